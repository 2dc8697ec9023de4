import os
import tarfile
from pathlib import Path

import pytest
import torch
from conftest import make_images, md5, tar_tree, write_image_tree, write_pickle_batches, zip_tree

import dataloaders
from dataloaders import load_cifar10, read_cifar10, split_indices
from training.batches import CIFAR_MEAN, CIFAR_STD, Normalize, TensorBatches
from training.errors import UserError


def _expected(n_per_class, seed):
    images, labels = make_images(n_per_class, seed)
    return torch.from_numpy(images).permute(0, 3, 1, 2), torch.from_numpy(labels)


def _sorted_pairs(images, labels):
    """Images as a set of (label, bytes): the order inside a split is not part of the format."""
    return sorted((int(l), bytes(x.numpy().tobytes())) for x, l in zip(images, labels))


def test_pickle_batches_are_read_exactly(tmp_path):
    root = write_pickle_batches(tmp_path / "tv")
    arrays = read_cifar10(root, progress=False)
    assert arrays.train_images.shape == (100, 3, 32, 32)
    assert arrays.train_images.dtype == torch.uint8
    assert arrays.test_images.shape == (20, 3, 32, 32)
    ex_x, ex_y = _expected(10, 0)
    assert _sorted_pairs(arrays.train_images, arrays.train_labels) == _sorted_pairs(ex_x, ex_y)
    tx, ty = _expected(2, 1)
    assert torch.equal(arrays.test_images, tx) and torch.equal(arrays.test_labels, ty)
    # the cifar-10-batches-py folder itself is accepted too
    again = read_cifar10(root / "cifar-10-batches-py", progress=False)
    assert torch.equal(again.train_images, arrays.train_images)


def test_original_archive_is_read_without_extracting(tmp_path):
    root = write_pickle_batches(tmp_path / "tv")
    holder = tmp_path / "holder"
    holder.mkdir()
    with tarfile.open(holder / "cifar-10-python.tar.gz", "w:gz") as tf:
        tf.add(root / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    before = sorted(p.name for p in holder.iterdir())
    arrays = read_cifar10(holder, progress=False)
    assert sorted(p.name for p in holder.iterdir()) == before  # nothing written beside it
    reference = read_cifar10(root, progress=False)
    assert torch.equal(arrays.train_images, reference.train_images)
    assert torch.equal(arrays.test_labels, reference.test_labels)


@pytest.mark.parametrize("form", ["tree", "tree-one-down", "tar.gz", "zip", "folder-with-archive"])
def test_image_folder_forms(tmp_path, form):
    tree = write_image_tree(tmp_path / "tree")
    if form == "tree":
        source = tree
    elif form == "tree-one-down":
        source = tmp_path
    elif form == "tar.gz":
        source = tar_tree(tree, tmp_path / "tiny.tar.gz")
    elif form == "zip":
        source = zip_tree(tree, tmp_path / "tiny.zip")
    else:
        holder = tmp_path / "holder"
        holder.mkdir()
        source = tar_tree(tree, holder / "tiny.tar.gz").parent
    arrays = read_cifar10(source, progress=False)
    ex_x, ex_y = _expected(10, 0)  # PNG is lossless: the exact pixels come back
    assert torch.equal(arrays.train_images, ex_x.contiguous())
    assert torch.equal(arrays.train_labels, ex_y)
    assert arrays.source["cache_hit"] is False


def test_jpeg_tree_decodes_close_to_originals(tmp_path):
    tree = write_image_tree(tmp_path / "tree", fmt="jpg")
    arrays = read_cifar10(tree, progress=False)
    ex_x, ex_y = _expected(10, 0)
    assert torch.equal(arrays.train_labels, ex_y)
    # lossy (the noise is smoothed away), but the same pictures: per-image colours agree
    ours = arrays.train_images.float().mean((2, 3))
    theirs = ex_x.float().mean((2, 3))
    assert (ours - theirs).abs().max() < 4


def test_cache_is_used_on_second_load_and_notices_changes(tmp_path, monkeypatch):
    tree = write_image_tree(tmp_path / "tree")
    first = read_cifar10(tree, progress=False)
    assert first.source["cache_hit"] is False and Path(first.source["cache"]).is_file()

    def no_decoding(*a, **k):
        raise AssertionError("decoded again although the cache is valid")

    with monkeypatch.context() as patched:  # undoes only this (undo() would also drop
        patched.setattr(dataloaders, "_decode_tree", no_decoding)  # the test's cache folder)
        second = read_cifar10(tree, progress=False)
    assert second.source["cache_hit"] is True
    assert torch.equal(second.train_images, first.train_images)
    # A changed source gets a new cache entry, not the stale one.
    write_image_tree(tree, n_train_per_class=11)
    third = read_cifar10(tree, progress=False)
    assert third.source["cache_hit"] is False
    assert len(third.train_labels) == 110


def test_cache_never_written_beside_source(tmp_path):
    tree = write_image_tree(tmp_path / "tree")
    (tmp_path / "ro").mkdir()
    archive = tar_tree(tree, tmp_path / "ro" / "tiny.tar.gz")
    before = sorted(os.listdir(tmp_path / "ro"))
    read_cifar10(archive, progress=False)
    assert sorted(os.listdir(tmp_path / "ro")) == before


def test_split_depends_only_on_seed():
    a_train, a_val = split_indices(50_000, 0.1, seed=3)
    b_train, b_val = split_indices(50_000, 0.1, seed=3)
    _c_train, c_val = split_indices(50_000, 0.1, seed=4)
    assert len(a_train) == 45_000 and len(a_val) == 5_000
    assert torch.equal(a_val, b_val) and torch.equal(a_train, b_train)
    assert not torch.equal(a_val, c_val)
    assert len(set(a_val.tolist()) & set(a_train.tolist())) == 0
    # unaffected by the global RNG
    torch.manual_seed(123)
    assert torch.equal(split_indices(50_000, 0.1, seed=3)[1], a_val)


def test_load_cifar10_batches(tmp_path):
    tree = write_image_tree(tmp_path / "tree")
    data = load_cifar10(tree, batch_size=16, seed=0, progress=False)
    assert data.info["n_train"] == 90 and data.info["n_val"] == 10 and data.info["n_test"] == 20
    assert len(data.train) == 90 // 16  # drop_last for training
    images, labels = next(iter(data.train))
    assert images.shape == (16, 3, 32, 32) and images.dtype == torch.float32
    assert labels.dtype == torch.int64
    # normalised with the course's mean and std
    raw = data.train.images.float() / 255
    expected = (raw - torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    full = torch.cat([x for x, _ in TensorBatches(data.train.images, data.train.labels, 7,
                                                  data.train.transform)])
    torch.testing.assert_close(full, expected)
    # the same seed gives the same split and the same batches
    again = load_cifar10(tree, batch_size=16, seed=0, progress=False)
    assert torch.equal(again.val.labels, data.val.labels)
    assert torch.equal(next(iter(again.train))[0], images)
    other = load_cifar10(tree, batch_size=16, seed=1, progress=False)
    assert not torch.equal(other.val.images, data.val.images)


def test_subset_limits_every_split(tmp_path):
    tree = write_image_tree(tmp_path / "tree")
    data = load_cifar10(tree, batch_size=4, seed=0, subset=8, progress=False)
    assert (data.info["n_train"], data.info["n_val"], data.info["n_test"]) == (8, 8, 8)


def test_epoch_order_is_reproducible_and_resumable():
    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 3, 2, 2).contiguous()
    labels = torch.arange(40)
    batches = TensorBatches(images, labels, 8, lambda x: x, shuffle=True, drop_last=True, seed=5)
    batches.set_epoch(2)
    full = [l.tolist() for _, l in batches]
    assert sorted(label for batch in full for label in batch) == list(range(40))
    assert [l.tolist() for _, l in batches.iter_from(3)] == full[3:]
    batches.set_epoch(3)
    assert [l.tolist() for _, l in batches] != full


def test_normalize_resize_matches_torchvision():
    from torchvision.transforms import v2

    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    reference = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(CIFAR_MEAN, CIFAR_STD)])
    ours = Normalize(CIFAR_MEAN, CIFAR_STD, "cpu")(images)
    torch.testing.assert_close(ours, reference(images))
    up = Normalize(CIFAR_MEAN, CIFAR_STD, "cpu", resize=(256, "nearest"))(images)
    assert up.shape == (4, 3, 256, 256)
    torch.testing.assert_close(up, reference(images).repeat_interleave(8, 2).repeat_interleave(8, 3))
    bil = Normalize(CIFAR_MEAN, CIFAR_STD, "cpu", resize=(224, "bilinear"), channels_last=True)(images)
    ref = v2.functional.resize(reference(images), [224, 224], antialias=False)
    torch.testing.assert_close(bil, ref, atol=1e-5, rtol=1e-5)
    assert bil.is_contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------- bad sources
def _user_error(source, match):
    with pytest.raises(UserError, match=match) as info:
        read_cifar10(source, progress=False)
    assert "\n" not in str(info.value)
    return info.value


def test_missing_path(tmp_path):
    _user_error(tmp_path / "nope", "does not exist")


def test_unknown_layout(tmp_path):
    (tmp_path / "something.txt").write_text("hi")
    _user_error(tmp_path, "none of the accepted layouts")
    _user_error(tmp_path / "something.txt", "not a .tar.gz")


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_broken_archive(tmp_path, tiny_archive, damage):
    bad = tmp_path / f"{damage}.tar.gz"
    data = tiny_archive.read_bytes()
    bad.write_bytes({"empty": b"", "truncated": data[: len(data) // 2],
                     "garbage": os.urandom(2000)}[damage])
    _user_error(bad, "empty, truncated or corrupt")


def test_tree_with_missing_class_or_split(tmp_path):
    tree = write_image_tree(tmp_path / "tree")
    import shutil
    shutil.rmtree(tree / "train" / "cat")
    _user_error(tree, "no train images of class.*cat")
    tree = write_image_tree(tmp_path / "tree2")
    shutil.rmtree(tree / "test")
    _user_error(tree, "no test/<class>/ images")


def test_tree_with_non_image_file(tmp_path):
    tree = write_image_tree(tmp_path / "tree")
    (tree / "train" / "dog" / "notes.txt").write_text("not an image")
    _user_error(tree, "notes.txt is not a PNG or JPEG")
    (tree / "train" / "dog" / "notes.txt").unlink()
    (tree / "train" / "dog" / "broken.png").write_bytes(b"\x89PNG garbage")
    _user_error(tree, "broken.png is not a readable image")


def test_tree_with_unknown_class(tmp_path):
    tree = write_image_tree(tmp_path / "tree")
    (tree / "train" / "unicorn").mkdir()
    (tree / "train" / "unicorn" / "0.png").write_bytes((tree / "train" / "dog" / "0000.png").read_bytes())
    _user_error(tree, "unknown class folder.*unicorn")


def test_corrupt_pickle_batch(tmp_path):
    root = write_pickle_batches(tmp_path / "tv")
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    _user_error(root, "data_batch_3 is not a CIFAR-10 python batch")
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    _user_error(root, "lacks data_batch_3")


def test_hostile_pickle_cannot_run_code(tmp_path):
    import pickle

    root = write_pickle_batches(tmp_path / "tv")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(pickle.dumps(Evil()))
    _user_error(root, "data_batch_1 is not a CIFAR-10 python batch")
    assert not marker.exists()


@pytest.mark.parametrize("member", ["../escape.png", "/abs/escape.png", "link"])
def test_malicious_archive_is_refused(tmp_path, tiny_tree, member):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tiny_tree, arcname="tiny")
        if member == "link":
            info = tarfile.TarInfo("tiny/train/cat/9999.png")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(info)
        else:
            data = (tiny_tree / "train" / "cat" / "0000.png").read_bytes()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            import io
            tf.addfile(info, io.BytesIO(data))
    _user_error(archive, "outside it|holds a link")
    assert not (tmp_path / "escape.png").exists() and not Path("/abs/escape.png").exists()


def test_no_network_and_nothing_local(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    monkeypatch.setattr(CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    with pytest.raises(UserError) as info:
        read_cifar10(None, download_root=tmp_path / "data", progress=False)
    message = str(info.value)
    assert "cifar-10-python.tar.gz" in message and "--data-dir" in message
    assert "\n" not in message


def test_download_path_with_torchvision(tmp_path, monkeypatch):
    """The default source: torchvision's CIFAR10 download, from an HTTP server on loopback."""
    import functools
    import http.server
    import threading

    from torchvision.datasets import CIFAR10

    src = write_pickle_batches(tmp_path / "src")
    archive = tmp_path / "served" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    folder = src / "cifar-10-batches-py"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(archive.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _download_and_check(tmp_path, src, archive, folder, server, monkeypatch, CIFAR10)
    finally:
        server.shutdown()
        server.server_close()


def _download_and_check(tmp_path, src, archive, folder, server, monkeypatch, CIFAR10):
    url = f"http://127.0.0.1:{server.server_address[1]}/cifar-10-python.tar.gz"
    monkeypatch.setattr(CIFAR10, "url", url)
    monkeypatch.setattr(CIFAR10, "tgz_md5", md5(archive))
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", md5(folder / f"data_batch_{i}")]
                                                for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5(folder / "test_batch")]])
    monkeypatch.setattr(CIFAR10, "_load_meta", lambda self: None)
    arrays = read_cifar10(None, download_root=tmp_path / "data", progress=False)
    assert (tmp_path / "data" / "cifar-10-batches-py" / "test_batch").is_file()
    assert torch.equal(arrays.train_images, read_cifar10(src, progress=False).train_images)
