"""Which roots lie on a network filesystem, whose changes on other machines raise no
inotify event here: the watcher polls those (``store.watch.watcher``)."""

from __future__ import annotations

from pathlib import Path

from store.index.db import filesystem_type, is_network_fs

MOUNTS = "\n".join(
    [
        "overlay / overlay rw,relatime 0 0",
        "server:/export /data nfs4 rw,relatime 0 0",
        "/dev/sdb1 /data/local ext4 rw,relatime 0 0",
        r"remote: /mnt/my\040runs fuse.rclone rw,nosuid 0 0",
        "mountpoint-s3 /mnt/s3 fuse rw,nosuid 0 0",
        r"weka /mnt/tab\011weka wekafs rw 0 0",
        "/dev/sdc1 /mnt/usb fuseblk rw 0 0",
        "truncated-line",
    ]
)


def test_the_longest_mount_point_decides_and_escaped_paths_are_read() -> None:
    cases = {
        "/data/run1/ckpt.pt": "nfs4",
        "/data/local/run1": "ext4",
        "/database": "overlay",  # a name that starts like /data is not under it
        "/mnt/my runs/version_0": "fuse.rclone",
        "/mnt/tab\tweka/x": "wekafs",
        "/home/me": "overlay",
    }
    for path, fs_type in cases.items():
        assert filesystem_type(Path(path), MOUNTS) == fs_type, path


def test_network_and_unnamed_fuse_mounts_are_polled_local_ones_are_not() -> None:
    assert is_network_fs(Path("/data/run1"), MOUNTS) == "nfs4"
    assert is_network_fs(Path("/mnt/my runs/a"), MOUNTS) == "fuse.rclone"
    assert is_network_fs(Path("/mnt/s3/prefix"), MOUNTS) == "fuse"  # mountpoint-s3: unsure
    assert is_network_fs(Path("/mnt/tab\tweka/x"), MOUNTS) == "wekafs"
    assert is_network_fs(Path("/data/local/run1"), MOUNTS) is None
    assert is_network_fs(Path("/mnt/usb/x"), MOUNTS) is None  # a local disk through FUSE
    assert is_network_fs(Path("/home/me"), MOUNTS) is None


def test_this_machines_own_mounts_are_read() -> None:
    assert filesystem_type(Path("/")) is not None


def test_network_mounts_below_a_root_are_found_outermost_first() -> None:
    from store.index.db import network_mounts_below

    mounts = MOUNTS + "\n".join(
        [
            "",
            "server:/a /home/me/outputs/shared nfs rw 0 0",
            "server:/b /home/me/outputs/shared/inner nfs rw 0 0",  # polled with its outer one
            "/dev/sdd1 /home/me/outputs/scratch ext4 rw 0 0",
            "server:/c /home/me/outputs-old nfs rw 0 0",  # beside the root, not below it
        ]
    )
    assert network_mounts_below(Path("/home/me/outputs"), mounts) == [
        ("/home/me/outputs/shared", "nfs")
    ]
    assert network_mounts_below(Path("/data/local"), mounts) == []
