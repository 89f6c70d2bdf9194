"""load_model() errors name the file; save_model_atomic() never leaves a partial file behind."""

import numpy as np
import pytest

from keras_latent.models import ModelFileError, build_encoder, load_model, save_model_atomic


@pytest.fixture(scope="module")
def encoder():
    return build_encoder((8, 8, 1), 3, kind="mlp", widths=[4])


@pytest.fixture(scope="module")
def saved(encoder, tmp_path_factory):
    return save_model_atomic(encoder, tmp_path_factory.mktemp("saved") / "model.keras")


def test_save_atomic_then_load_predicts_the_same(encoder, saved):
    assert saved.exists()
    assert [p.name for p in saved.parent.iterdir()] == ["model.keras"]  # no temp file left over
    x = np.random.default_rng(0).random((2, 8, 8, 1), dtype=np.float32)
    np.testing.assert_array_equal(load_model(saved).predict(x, verbose=0), encoder.predict(x, verbose=0))


def test_save_atomic_replaces_an_existing_file_and_creates_folders(encoder, tmp_path):
    target = tmp_path / "run" / "nested" / "model.keras"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"old")
    save_model_atomic(encoder, target)
    assert load_model(target).name == "encoder"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.keras"]


def test_failed_save_leaves_the_old_file_and_no_temp(tmp_path):
    class Broken:
        def save(self, path):
            with open(path, "wb") as f:
                f.write(b"partial")
            raise RuntimeError("disk full")

    target = tmp_path / "model.keras"
    target.write_bytes(b"previous good model")
    with pytest.raises(RuntimeError, match="disk full"):
        save_model_atomic(Broken(), target)
    assert target.read_bytes() == b"previous good model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_save_atomic_requires_keras_suffix(encoder, tmp_path):
    with pytest.raises(ModelFileError, match=r"\.keras"):
        save_model_atomic(encoder, tmp_path / "model.h5")


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.keras"
    with pytest.raises(ModelFileError, match="no model file") as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_truncated_file_is_named(saved, tmp_path):
    path = tmp_path / "truncated.keras"
    path.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    with pytest.raises(ValueError) as info:
        load_model(path)
    assert isinstance(info.value, ModelFileError)
    assert str(path) in str(info.value) and "corrupt" in str(info.value)


def test_corrupted_member_is_named(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    middle = len(data) // 3
    original = bytes(data[middle : middle + 64])
    data[middle : middle + 64] = bytes((b ^ 0xFF) for b in original)  # damage a member, keep the directory
    path = tmp_path / "damaged.keras"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name, content", [("weights.h5", b"\x89HDF\r\n"), ("notes.txt", b"hello"), ("model.weights.h5", b"x")])
def test_non_keras_files_are_named(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="not a .keras model file") as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_a_keras_suffix_on_a_non_zip_is_named(tmp_path):
    path = tmp_path / "fake.keras"
    path.write_text("not a zip")
    with pytest.raises(ModelFileError, match="not a valid .keras archive") as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_a_folder_is_named(tmp_path):
    with pytest.raises(ModelFileError, match="is a folder"):
        load_model(tmp_path)
