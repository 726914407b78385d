"""Inference: lift your own 2D detections to 3D with a trained jpose pipeline.

The ``jpose`` command (:mod:`jpose.inference.cli`) and its Python API:

* :mod:`~jpose.inference.predictor`: :class:`Predictor`, :func:`load_predictor` (any work
  directory or bundle), :func:`load_pretrained`, :func:`restore_variables`, the method registry;
* :mod:`~jpose.inference.bundles`: pretrained bundles (:func:`list_pretrained`, checksums);
* :mod:`~jpose.inference.pipelines`: pipelines declared in ``model.json`` (restored without
  method code);
* :mod:`~jpose.inference.keypoints`: :func:`load_keypoints` -> :class:`KeypointInput`;
* :mod:`~jpose.inference.lifting`: :func:`lift`, :func:`smooth_poses`, :func:`write_output`.

Usage::

    jpose --pretrained=camerapose_cmu_coco --input=detections.json --output=poses.json \
        --image_size=1920,1080                   # a shipped bundle (jpose.inference), no training
    jpose --workdir=RUN --input=detections.json --output=poses3d.npz --image_size=1920,1080
    python -m jpose.inference.cli --workdir=RUN --input=kp.npz --output=out.json \
        --focal=1145,1144 --center=960,540 --smooth_sigma=2

``RUN`` is the work directory of a training run (``python -m experiments.<method>
--workdir=RUN``); its pipeline is restored with :func:`load_predictor`.

Input formats (``--input``)
---------------------------

a) **COCO keypoint results** (``.json``, what COCO-style detectors such as mmpose, Detectron2 or
   HRNet write): a list of ``{"image_id", "category_id", "keypoints": [x, y, s] * 17, "score",
   optional "track_id", optional "bbox" [x, y, w, h]}``. ``x, y`` are pixels, ``s`` the joint's
   score. Layout ``coco17`` (``--layout`` may name another layout with as many joints); 26
   joints per entry are AlphaPose's Halpe-26 (``halpe26``; AlphaPose's ``"box"`` is read as
   ``"bbox"``).
b) **COCO ground-truth annotations** (``.json`` dict with ``"images"`` and ``"annotations"``):
   ``keypoints`` with COCO visibility flags (0 unlabelled, 1 occluded, 2 visible), converted to
   confidences 0 / 1 / 1 as in :mod:`jpose.data.wild2d`; image sizes from ``"images"``.
c) **Arrays** (``.npz``, or ``.json`` dict of lists): ``keypoints`` ``[N, J, 2]`` pixels or
   ``[N, J, 3]`` (third column = scores); optional ``scores`` ``[N, J]`` (wins over a third
   column), ``layout`` (a layout name), ``image_size`` ``[2]`` or ``[N, 2]`` (width, height),
   ``image_id`` or ``frame`` ``[N]`` (ints or strings; default ``0..N-1``), ``track_id``
   ``[N]``, ``score`` ``[N]`` (person score; default the mean joint score) and ``bbox``
   ``[N, 4]`` (x, y, w, h pixels, used by the ``"bbox"`` normalisation only).
d) **OpenPose** (``--write_json`` output): a directory of per-frame ``*_keypoints.json`` files
   (``{"people": [{"pose_keypoints_2d": [x, y, c] * J, "person_id": ...}]}``), or one such file.
   Files named ``<video>_<frame number>_keypoints.json`` (one video) are frames in frame-number
   order and the frame number is the ``image_id``; other names give the file name (without
   ``_keypoints.json``) as ``image_id``, in name order. ``person_id`` other than -1 is the
   ``track_id``. Layout ``body25`` (BODY_25, the default model) for 25 joints, ``openpose18``
   (OpenPose's COCO model) for 18; other counts are resolved as for arrays. Joints with
   confidence 0 (written as 0, 0, 0) are missing. OpenPose records no image size: give
   ``--image_size`` (or ``--image_sizes``) for pipelines that need one.

Joint order: the source layout (``N`` people x ``J`` joints in that layout's order, see
``jpose.skeleton``: ``coco17``, ``mpii16``, ``h36m17``, ``h36m16``, ``h36m32``, ``mpi3dhp17``,
``mpi3dhp28``, ``smpl24``, ``openpose18``, ``body25``, ``halpe26``). The layout is
``--layout``, else the file's ``layout``, else the only layout with that many joints; 16 joints
(``mpii16`` / ``h36m16``) and 17 joints (``coco17`` / ``h36m17`` / ``mpi3dhp17``) are
ambiguous and need ``--layout``. Inputs are converted to the pipeline's layout (``h36m17``:
Hip, RHip, RKnee, RFoot, LHip, LKnee, LFoot, Spine, Thorax, Neck/Nose, Head, LShoulder, LElbow,
LWrist, RShoulder, RElbow, RWrist) with :func:`jpose.skeleton.convert_layout`: a derived joint
(e.g. COCO's Hip = mid-hips) gets the minimum score of its sources. All outputs are in the
pipeline's layout (``joint_names``); "left" is the person's own left.

Scores: joint scores are clipped to ``[0, 1]`` and used as confidences; joints below
``--min_score`` get confidence 0 (missing). Missing joints may have NaN coordinates; any other
non-finite coordinate is an error. As in training (:mod:`jpose.data.wild2d`), normalised
coordinates of missing joints are set to 0.

Validity (no pose from garbage): a person is lifted only when its 2D passes
:func:`person_validity` (at least ``--min_joints`` (8) confident joints, plausible coordinates
and image size) and its lifted 3D is plausible (every joint within 10 m of the root, a root
translation within 10 km). Otherwise a single person is an error (exit status 2) and, in a
batch, the person comes back with ``valid`` False, its reason in ``invalid_reason`` and NaN
poses, with one warning line; a batch without a valid person is an error. A work directory
whose training did not finish is refused unless ``--allow_unfinished`` (then a warning and
``unfinished`` in the output say so). User errors exit with status 2 and one
``jpose: error: ...`` line, without a traceback.

Normalisation: the 2D keypoints are normalised exactly as the pipeline's training inputs were
(``Predictor.normalization``, :func:`jpose.data.normalize_2d`): ``"vp"`` (VideoPose3D
``uv / w * 2 - [1, h / w]``) and ``"image"`` (``uv / (w, h) * 2 - 1``) need each image's size
(``--image_size W,H`` for every input, ``--image_sizes`` ``{image_id: [w, h]}`` JSON,
``--annotations`` COCO annotation JSON with ``images: [{id, width, height}]``, or the file's
``image_size``; in that order of precedence); ``"bbox"`` uses the person box (``bbox`` of the
input, else the tight box of the joints with confidence > 0) and needs no image size.

Outputs: camera space, not world
--------------------------------

3D poses are in the **camera frame** of the image they were detected in (OpenCV: x right, y
down, z forward, metres; the pipeline never sees a world frame, so there is no ground plane or
world orientation). ``pose3d_root_relative`` ``[N, J, 3]`` has the pelvis (joint 0) at the
origin. ``pose3d_absolute`` ``[N, J, 3]`` (root-relative + root translation) is written when

* the intrinsics are known (``--focal fx,fy`` [``--center cx,cy``, default the image centre],
  pixels): the root translation is solved from the pixel keypoints and the predicted
  root-relative pose by confidence-weighted least squares with re-projection errors in pixels
  (:func:`jpose.camera.solve_root_translation`; derived joints such as COCO's mid-hip Hip use
  the mean of the pixels, a sub-pixel approximation of the projection); ``absolute_source =
  "known_intrinsics"``; known intrinsics take precedence over a camera branch, whose
  translation is then kept as ``translation_camera_branch``;
* otherwise, when the pipeline has a camera branch (CameraPose), from its predicted translation;
  ``absolute_source = "camera_branch"``; its predicted intrinsics are also written, converted
  back to pixels (``focal_px``, ``center_px``).

Pipelines trained without metric 3D (``Predictor.metric_scale`` False, e.g. Drover et al.)
predict 3D up to scale: the output then carries a warning and its "metres" are not metres.

Video
-----

Give one detection per person per frame with ``image_id`` (or ``frame``) the frame number. With
one person per frame no ``track_id`` is needed; with several people per frame give a
``track_id`` per detection (a tracker's identities). ``--smooth_sigma S`` (frames) applies a
Gaussian filter along the frames of each track (sorted by frame number; a gap in the frame
numbers is a gap in time; edges use the available neighbours) to the 3D outputs; 0 = off.

Output file (``--output``)
--------------------------

``.npz``: arrays ``pose3d_root_relative``, ``pose3d_absolute`` / ``translation`` (root
position, metres; when any),
``focal_px`` / ``center_px`` (camera branch), ``keypoints_px`` (input 2D in the output layout),
``joint_scores``, ``score``, ``image_id``, ``track_id`` (when given), ``valid`` and
``invalid_reason`` (per person, see Validity), ``joint_names``, plus a
JSON string ``meta`` with everything else: ``layout``, ``input_layout``, ``units`` (metres),
``frame`` (camera, x right, y down, z forward), ``absolute_source``, ``normalization``,
``metric_scale``, ``warnings``, the pipeline's ``experiment`` / ``description`` /
``checkpoint``, ``input_file`` and ``timing`` (seconds per person of the lifting network,
excluding compilation: measured after a warm-up call). ``.json``: one object with the same
fields (arrays as nested lists, NaN as null).

``.bvh`` (:mod:`jpose.bvh`, :func:`write_bvh_files`): a motion file per person for animation
tools, in centimetres in the camera frame turned 180 degrees about x (x right, y up, z towards
the camera), the root at ``pose3d_absolute``'s root when there is one, else at the origin;
``Frame Time`` = 1 / ``--fps`` (default 30); joint rotations (``Zrotation Xrotation
Yrotation``) against a T-pose with the sequence's mean bone lengths. One track: the file named;
several tracks (``track_id``): one ``<stem>_track<id>.bvh`` per track. Each track needs evenly
spaced frame numbers and a valid pose in every frame. BVH has one length per bone: when the
lifted bone lengths vary along a track, a warning gives the resulting joint-position error.
"""

from jpose.inference import pipelines
from jpose.inference.bundles import (
    BUNDLE_FILE,
    PRETRAINED_DIR,
    SHA256_FILE,
    WEIGHTS_FILE,
    BundleError,
    bundle_variables,
    flatten_variables,
    is_bundle,
    list_pretrained,
    pretrained_descriptions,
    pretrained_path,
    read_bundle_info,
    read_weights,
    resolve_bundle,
    sha256_file,
    unflatten_variables,
    verify_bundle,
    write_bundle_weights,
    write_weights,
)
from jpose.inference.keypoints import KeypointInput, load_keypoints, resolve_layout
from jpose.inference.lifting import (
    MAX_POSE_M,
    MIN_JOINTS,
    lift,
    person_validity,
    smooth_poses,
    tracks_for_smoothing,
    write_bvh_files,
    write_output,
)
from jpose.inference.predictor import (
    BUILTIN_METHODS,
    Predictor,
    load_predictor,
    load_pretrained,
    method_target,
    read_config,
    read_model_info,
    recording_restores,
    register_method,
    registered_methods,
    restore_variables,
)

# the public names of the submodules (tests/test_api.py checks the list against them)
__all__ = [
    "BUILTIN_METHODS",
    "BUNDLE_FILE",
    "BundleError",
    "KeypointInput",
    "MAX_POSE_M",
    "MIN_JOINTS",
    "PRETRAINED_DIR",
    "Predictor",
    "SHA256_FILE",
    "WEIGHTS_FILE",
    "bundle_variables",
    "flatten_variables",
    "is_bundle",
    "lift",
    "list_pretrained",
    "load_keypoints",
    "load_predictor",
    "load_pretrained",
    "method_target",
    "person_validity",
    "pipelines",
    "pretrained_descriptions",
    "pretrained_path",
    "read_bundle_info",
    "read_config",
    "read_model_info",
    "read_weights",
    "recording_restores",
    "register_method",
    "registered_methods",
    "resolve_bundle",
    "resolve_layout",
    "restore_variables",
    "sha256_file",
    "smooth_poses",
    "tracks_for_smoothing",
    "unflatten_variables",
    "verify_bundle",
    "write_bundle_weights",
    "write_bvh_files",
    "write_output",
    "write_weights",
]
