"""Test configuration: four simulated CPU devices, set before jax is imported anywhere."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pathlib  # noqa: E402

import pytest  # noqa: E402

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
if SHARED_DATA.is_dir():  # what `experiments` defaults it to; the library never guesses
    os.environ.setdefault("JPOSE_SHARED_DATA", str(SHARED_DATA))


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """Path of ../shared/data; skips the test with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data directory {SHARED_DATA} not present (developer/CI-only data)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def fast_compile():
    """Switch off most XLA optimisations for one module (``pytestmark =
    pytest.mark.usefixtures("fast_compile")``): compile-bound smoke tests compile about twice as
    fast; the numerics are unchanged up to rounding."""
    import jax

    old = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", old)
