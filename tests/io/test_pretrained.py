import pytest
import torch

from tests.helpers.shared import REFERENCE, require_path
from vlwm.io.download import ChecksumMismatchError, Download, RetryPolicy, UnreachableError
from vlwm.io.lock import DownloadLock
from vlwm.io.pretrained import CheckpointStructureError, OfficialFile, download_models, fetch_verified
from vlwm.models.builders import build_vqvae
from vlwm.models.config import tiny_vae_config
from vlwm.models.official_weights import official_shapes, verify_checkpoint, verify_official_checkpoint

SMALL_CKPT = REFERENCE / "ckpt_small_vqvae_epoch_1.pth"
FAST = RetryPolicy(attempts=3, backoff_s=0.01, connect_timeout_s=2.0)


@pytest.fixture
def tiny_ckpt(tmp_path):
    """A train.py-layout checkpoint of a tiny VQ-VAE, its bytes and expected key -> shape map."""
    torch.manual_seed(0)
    model = build_vqvae(tiny_vae_config())
    path = tmp_path / "tiny.pth"
    torch.save({"state_dict": model.state_dict(), "optimizer": {}, "epoch": 1, "global_iter": 1}, path)
    return path.read_bytes(), {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_official_shapes_match_the_official_lists():
    import json
    ref = require_path(REFERENCE, "reference folder", directory=True)
    for kind, name in (("vqvae", "vae"), ("world_model", "occworld")):
        listed = json.loads((ref / f"{name}_state_dict_shapes.json").read_text())["state_dict"]
        assert official_shapes(kind) == {k: tuple(v["shape"]) for k, v in listed.items()}


def test_real_small_training_checkpoint_verifies():
    require_path(SMALL_CKPT, "small reference checkpoint")
    sd = torch.load(SMALL_CKPT, weights_only=True)["state_dict"]
    assert verify_checkpoint(SMALL_CKPT, {k: tuple(v.shape) for k, v in sd.items()}) == 222
    with pytest.raises(CheckpointStructureError, match="other shape"):
        verify_checkpoint(SMALL_CKPT, official_shapes("vqvae"))          # small widths, not the release


def _shapes_check(expected):
    """The structural check ``fetch_verified`` is given: the file holds exactly ``expected``'s keys and shapes."""
    return lambda path: verify_checkpoint(path, expected)


def test_checkpoint_download_verified_locked_and_rechecked(http_server, tmp_path, tiny_ckpt):
    base, st = http_server
    body, expected = tiny_ckpt
    st.files["/vqvae_epoch_125.pth"] = body
    lock = DownloadLock.at(tmp_path)
    spec = Download(f"{base}/vqvae_epoch_125.pth", tmp_path / "pretrained/vqvae/epoch_125.pth")
    fetch_verified(spec, lock, _shapes_check(expected), policy=FAST, progress=False)
    entry = DownloadLock.at(tmp_path).get(spec.dest)
    assert entry is not None and entry.size == len(body)
    # Later run: present and matching the lock -> no request.
    n = len(st.requests)
    fetch_verified(spec, DownloadLock.at(tmp_path), _shapes_check(expected), policy=FAST, progress=False)
    assert len(st.requests) == n
    # The file is replaced by a corrupt one: the lock catches it.
    spec.dest.write_bytes(body[:-1] + b"x")
    with pytest.raises(ChecksumMismatchError, match="does not match"):
        fetch_verified(spec, DownloadLock.at(tmp_path), _shapes_check(expected), policy=FAST, progress=False)


def test_wrong_structure_is_rejected_not_locked(http_server, tmp_path, tiny_ckpt):
    base, st = http_server
    body, expected = tiny_ckpt
    st.files["/w.pth"] = body
    wrong = dict(expected, **{"extra.weight": (1,)})
    spec = Download(f"{base}/w.pth", tmp_path / "pretrained/occworld/latest.pth")
    with pytest.raises(CheckpointStructureError, match="missing"):
        fetch_verified(spec, DownloadLock.at(tmp_path), _shapes_check(wrong), policy=FAST, progress=False)
    assert not spec.dest.exists() and (spec.dest.parent / "latest.pth.rejected").is_file()
    assert DownloadLock.at(tmp_path).get(spec.dest) is None


def test_models_offline_lists_every_file_to_place(tmp_path):
    files = (OfficialFile("http://nonexistent.invalid/a.pth", "pretrained/vqvae/epoch_125.pth", None),
             OfficialFile("http://nonexistent.invalid/b.pkl", "data/b.pkl", None))
    with pytest.raises(UnreachableError) as err:
        download_models(tmp_path, verify_official_checkpoint, policy=FAST, progress=False, files=files)
    msg = str(err.value)
    assert "nonexistent.invalid" in msg and "epoch_125.pth" in msg and "data/b.pkl" in msg


def test_file_placed_by_hand_is_verified_and_locked_without_a_request(http_server, tmp_path, tiny_ckpt):
    base, st = http_server
    body, expected = tiny_ckpt
    spec = Download(f"{base}/w.pth", tmp_path / "pretrained/vqvae/epoch_125.pth")
    spec.dest.parent.mkdir(parents=True)
    spec.dest.write_bytes(body)
    fetch_verified(spec, DownloadLock.at(tmp_path), _shapes_check(expected), policy=FAST, progress=False)
    assert st.requests == [] and DownloadLock.at(tmp_path).get(spec.dest).size == len(body)


def test_download_models_hands_each_checkpoint_and_its_kind_to_the_check(http_server, tmp_path, tiny_ckpt):
    base, st = http_server
    body, _ = tiny_ckpt
    st.files["/a.pth"], st.files["/b.pkl"] = body, b"not a checkpoint"
    files = (OfficialFile(f"{base}/a.pth", "pretrained/vqvae/epoch_125.pth", "vqvae"),
             OfficialFile(f"{base}/b.pkl", "data/b.pkl", None))
    seen = []
    paths = download_models(tmp_path, lambda kind, path: seen.append((kind, path)), policy=FAST, progress=False,
                            files=files)
    assert seen == [("vqvae", tmp_path / "pretrained/vqvae/epoch_125.pth")]          # the pickle: checksum only
    assert paths == [tmp_path / f.relpath for f in files]
    with pytest.raises(CheckpointStructureError, match="other shape"):              # the real check: tiny != release
        download_models(tmp_path / "again", verify_official_checkpoint, policy=FAST, progress=False, files=files[:1])
    assert (tmp_path / "again/pretrained/vqvae/epoch_125.pth.rejected").is_file()
