"""Networks of the five methods, each exposed as a pure :class:`Model` (``init`` / ``apply``).

Experiments build players from the factories below; the Linen modules are importable for
composition (e.g. a custom head) but training code only sees :class:`Model`.
"""

from jpose.models.camerapose import (
    CameraBranch,
    CameraPoseForward,
    RefineNet,
    camera_branch,
    camerapose_predict,
    refine_net,
)
from jpose.models.core import (
    BatchNorm,
    ByteDropout,
    Model,
    kaiming_normal,
    leaky_relu,
    ordered_pmean,
    param_count,
)
from jpose.models.lifter import (
    ResidualMLP,
    coordinate_stats,
    drover_discriminator,
    drover_generator,
    li_lifter,
    li_root_branch,
    lifter_stats,
    martinez_lifter,
    max_norm_constraint,
)
from jpose.models.poseaug import (
    GeneratorMLP,
    KCSPath,
    PartKCSDiscriminator,
    PoseAugDiscriminator2D,
    PoseAugGenerator,
    part_kcs_discriminator,
    poseaug_discriminator_2d,
    poseaug_generator,
)
from jpose.models.temporal import TemporalConvLifter, temporal_lifter

__all__ = [
    "BatchNorm",
    "ordered_pmean",
    "CameraBranch",
    "GeneratorMLP",
    "KCSPath",
    "ByteDropout",
    "Model",
    "PartKCSDiscriminator",
    "PoseAugDiscriminator2D",
    "PoseAugGenerator",
    "RefineNet",
    "ResidualMLP",
    "TemporalConvLifter",
    "camera_branch",
    "CameraPoseForward",
    "camerapose_predict",
    "drover_discriminator",
    "drover_generator",
    "kaiming_normal",
    "leaky_relu",
    "coordinate_stats",
    "lifter_stats",
    "li_lifter",
    "li_root_branch",
    "martinez_lifter",
    "max_norm_constraint",
    "param_count",
    "part_kcs_discriminator",
    "poseaug_discriminator_2d",
    "poseaug_generator",
    "refine_net",
    "temporal_lifter",
]
