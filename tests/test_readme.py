"""The README's code example runs as written."""

import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)  # noqa: S102
    assert scope["p_mpjpe_mm"].shape == (64,)
    assert np.all(np.asarray(scope["p_mpjpe_mm"]) < 20.0)  # 1 cm noise -> well under 20 mm
    assert scope["uv_px"].shape == (64, 17, 2)
    assert np.all(np.isfinite(np.asarray(scope["geo"])))
    assert np.all(np.isfinite(np.asarray(scope["grads"])))
