"""Backend features: a closed set, each backend's reasons for what it lacks, and the one
refusal (`Backend.require`) whose Slurm-style lines the commands print."""

import fake_backend
import pytest

from slurmsky import backends
from slurmsky.backends import Backend, BackendFeature, Feature, Unsupported
from slurmsky.commands import salloc
from slurmsky.core import jobcontrol
from slurmsky.errors import SlurmError


def test_every_feature_is_supported_or_refused_with_a_reason_by_every_backend():
    members = list(Feature)
    assert len(members) == len({f.name for f in members}) >= 8
    for backend in backends.every():
        assert set(backend.unsupported) <= set(members), backend.name
        for feature in members:
            reason = backend.unsupported.get(feature)
            assert backend.supports(feature) == (reason is None), (backend.name, feature)
            assert reason is None or (isinstance(reason, str) and reason.strip()), feature


def test_a_backend_that_declares_nothing_supports_nothing():
    assert not any(Backend().supports(feature) for feature in Feature)


def test_a_misspelt_or_bare_feature_is_an_error_not_false():
    with pytest.raises(AttributeError):
        Feature.INTERACTIV  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        backends.get("local").supports("interactive")  # type: ignore[arg-type]
    assert all(isinstance(f, BackendFeature) and f.doc for f in Feature)
    assert repr(Feature.QUEUE_SYNC) == "Feature.QUEUE_SYNC"


def test_require_refuses_in_slurms_words(monkeypatch):
    fake = fake_backend.BACKEND
    with pytest.raises(Unsupported) as caught:
        fake.require(Feature.INTERACTIVE)
    refusal = caught.value
    assert isinstance(refusal, SlurmError) and refusal.exit_code == 1
    assert refusal.render("salloc") == (
        "salloc: error: interactive allocations are not available on the fake backend; "
        "use srun or sbatch\n"
    )
    assert (refusal.backend, refusal.feature) == ("fake", Feature.INTERACTIVE)
    assert refusal.reason == fake.unsupported[Feature.INTERACTIVE]
    with pytest.raises(Unsupported) as caught:  # scancel --signal's per-job error
        backends.get("sky").require(Feature.STEP_SIGNALS)
    assert str(caught.value) == jobcontrol.DISABLED
    with pytest.raises(Unsupported) as caught:  # a feature callers only branch on
        backends.get("local").require(Feature.QUEUE_SYNC)
    assert str(caught.value) == (
        "queue_sync is not available on the local backend: "
        + backends.get("local").unsupported[Feature.QUEUE_SYNC]
    )
    backends.get("local").require(Feature.INTERACTIVE)  # supported: no refusal


def test_salloc_refuses_on_a_backend_without_interactive_allocations(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURMSKY_CONFIG", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("SLURMSKY_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(backends, "configured", lambda cfg: fake_backend.BACKEND)
    with pytest.raises(Unsupported) as caught:
        salloc.body(["true"])
    assert caught.value.render("salloc") == (
        "salloc: error: interactive allocations are not available on the fake backend; "
        "use srun or sbatch\n"
    )
