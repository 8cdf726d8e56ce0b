"""OmegaConf interpolations in a checkpoint's pickled strings.

Lightning pickles ``hyper_parameters`` as given, often an OmegaConf ``DictConfig`` whose
state holds the raw strings; resolving it calls each ``${name:...}`` resolver, and projects
register ``eval`` (lightning-hydra-template and many others).  ``artlens scan`` called such
a checkpoint ``safe``.  Nothing runs on a plain load, so it is ``unknown`` (naming the
resolver), never ``dangerous``; plain ``${model.dim}`` references and OmegaConf's and
Hydra's own resolvers stay ``safe``.  Pickles are spelled opcode by opcode; nothing is
unpickled.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.pickle_bytes import float_tensor
from tests.pickle_bytes import integer as _int
from tests.pickle_bytes import text as _str
from tui.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")

EVAL = '${eval:\'__import__("os").system("id")\'}'
ORDINARY = {
    "dim": "${model.dim}",
    "out": "${paths.root_dir}/logs/${task_name}",
    "relative": "${..lr}",
    "root": "${oc.env:PROJECT_ROOT}",
    "fallback": "${oc.select:trainer.devices,1}",
    "run": "${hydra:runtime.output_dir}/${now:%Y-%m-%d}",
    "keys": "${oc.dict.keys:model}",
    "price": "costs $5 {not an interpolation}",
}
"""Values a real Hydra/Lightning config holds: references and built-in resolvers."""


def _node(value: str) -> bytes:
    """An ``omegaconf.nodes.AnyNode`` as OmegaConf pickles it (NEWOBJ, then its state)."""
    return b"comegaconf.nodes\nAnyNode\n)\x81}(" + _str("_val") + _str(value) + b"ub"


def _dict_config(values: dict[str, str]) -> bytes:
    """A ``DictConfig`` of ``values`` as OmegaConf pickles it (its state holds raw strings)."""
    content = b"}(" + b"".join(_str(k) + _node(v) for k, v in values.items()) + b"u"
    return b"comegaconf.dictconfig\nDictConfig\n)\x81}(" + _str("_content") + content + b"ub"


def _checkpoint_object(values: dict[str, str]) -> bytes:
    """A Lightning checkpoint dict (no PROTO, no STOP) whose hyper_parameters are a
    DictConfig of ``values``, with one float tensor in storage ``0``."""
    return (
        b"}("
        + _str("epoch")
        + _int(3)
        + _str("hyper_parameters")
        + _dict_config(values)
        + _str("state_dict")
        + b"}("
        + _str("model.w")
        + float_tensor()
        + b"uu"
    )


def _torch_zip(path: Path, values: dict[str, str]) -> None:
    """``torch.save``'s zip format: ``<folder>/data.pkl`` and the tensor's storage."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        pickled = b"\x80\x02" + _checkpoint_object(values) + b"."
        archive.writestr("epoch=3-step=12/data.pkl", pickled)
        archive.writestr("epoch=3-step=12/byteorder", "little")
        archive.writestr("epoch=3-step=12/data/0", np.ones(4, dtype=np.float32).tobytes())
        archive.writestr("epoch=3-step=12/version", "3\n")


def _torch_legacy(path: Path, values: dict[str, str]) -> None:
    """torch's pre-zip format: magic, protocol, sys info, the object and its storage keys
    (five pickles), then each storage as an element count and its bytes."""
    magic = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
    protocol = b"\x80\x02M\xe9\x03."
    sys_info = b"\x80\x02}(" + _str("little_endian") + b"\x88u."
    keys = b"\x80\x02](" + _str("0") + b"e."
    storage = struct.pack("<q", 4) + np.ones(4, dtype=np.float32).tobytes()
    obj = b"\x80\x02" + _checkpoint_object(values) + b"."
    path.write_bytes(magic + protocol + sys_info + obj + keys + storage)


def _plain_pickle(path: Path, values: dict[str, str]) -> None:
    """A plain pickle of the config alone (``pickle.dump(cfg, f)``)."""
    path.write_bytes(b"\x80\x02" + _dict_config(values) + b".")


WRITERS = {"last.ckpt": _torch_zip, "legacy.pt": _torch_legacy, "config.pkl": _plain_pickle}


def _scan(target: Path) -> tuple[int, dict[str, dict[str, object]]]:
    result = CliRunner().invoke(main, ["scan", "--json", str(target)])
    report = json.loads(result.stdout)
    return result.exit_code, {Path(str(f["path"])).name: f for f in report["files"]}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_an_eval_interpolation_makes_a_checkpoint_unknown(tmp_path: Path, name: str) -> None:
    WRITERS[name](tmp_path / name, {**ORDINARY, "seed": EVAL})
    code, found = _scan(tmp_path)
    entry = found[name]
    assert entry["verdict"] == "unknown", entry
    assert code == 0  # nothing runs on load: not dangerous, a strict gate fails it
    reasons = " ".join(map(str, entry["reasons"]))  # type: ignore[call-overload]
    assert "${eval:...}" in reasons and "resolver named 'eval'" in reasons, reasons
    strict = CliRunner().invoke(main, ["scan", "--fail-on", "unknown", str(tmp_path / name)])
    assert strict.exit_code == 1


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_ordinary_references_and_built_in_resolvers_stay_safe(tmp_path: Path, name: str) -> None:
    WRITERS[name](tmp_path / name, ORDINARY)
    code, found = _scan(tmp_path)
    assert found[name]["verdict"] == "safe", found[name]
    assert code == 0
    # reading an environment variable runs no code; it is said, not judged
    assert any("PROJECT_ROOT" in str(r) for r in found[name]["reasons"])  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("${hcp.eval:1+1}", "${hcp.eval:...}"),  # a namespaced eval (HCP-Diffusion)
        ("${ eval : 1 }", "${eval:...}"),  # blanks the grammar allows
        ("a/${oc.select:x,${exec:1}}/b", "${exec:...}"),  # nested in a built-in's argument
        ("${my_len:${model.layers}}", "${my_len:...}"),  # any project-defined resolver
        ("${oc.decode:'$\\{eval:1\\}'}", "${oc.decode:...}"),  # builds one when resolved
        ("${oc.create:'{a: 1}'}", "${oc.create:...}"),
        ("${${which}:1}", "resolver name is itself an interpolation"),
        ("${ns.${which}:1}", "resolver name is itself an interpolation"),
        ("\\${eval:1}", "${eval:...}"),  # escaped: oc.decode undoes it, so still counted
    ],
)
def test_every_resolver_that_may_run_code_is_named(tmp_path: Path, value: str, named: str) -> None:
    _torch_zip(tmp_path / "last.ckpt", {"dim": "${model.dim}", "x": value})
    _, found = _scan(tmp_path)
    entry = found["last.ckpt"]
    assert entry["verdict"] == "unknown", entry
    assert named in " ".join(map(str, entry["reasons"])), entry  # type: ignore[call-overload]


def test_a_computed_node_reference_is_not_a_resolver(tmp_path: Path) -> None:
    _torch_zip(tmp_path / "last.ckpt", {"a": "${${which}}", "b": "${model.${part}.dim}"})
    _, found = _scan(tmp_path)
    assert found["last.ckpt"]["verdict"] == "safe", found["last.ckpt"]


def test_a_flood_of_interpolations_is_unknown_not_read_forever(tmp_path: Path) -> None:
    flood = "${model.dim}" * 20_000  # more than the scan examines, all harmless
    _torch_zip(tmp_path / "last.ckpt", {"x": flood})
    _, found = _scan(tmp_path)
    entry = found["last.ckpt"]
    assert entry["verdict"] == "unknown", entry
    assert "not all examined" in " ".join(map(str, entry["reasons"]))  # type: ignore[call-overload]


def _bytes(value: bytes) -> bytes:
    """SHORT_BINBYTES/BINBYTES of ``value`` (protocol 3)."""
    return b"B" + struct.pack("<I", len(value)) + value


_UTF7 = "${eval:1}".encode("utf-7")  # b"+ACQAew-eval:1+AH0-": no "${" in its bytes
_STR = b"cbuiltins\nstr\n"


@pytest.mark.parametrize(
    "built",
    [
        _STR + b"(" + _bytes(_UTF7) + _str("utf-7") + b"tR",  # str(b, "utf-7")
        _STR + b"(" + _bytes(_UTF7) + _str("utf-7") + b"t\x81",  # NEWOBJ: str.__new__
        _STR
        + b")}("
        + _str("object")
        + _bytes(_UTF7)
        + _str("encoding")
        + _str("utf-7")
        + b"u\x92",  # NEWOBJ_EX, the codec a keyword
        b"c_codecs\nencode\n(" + _str("${riny:1}") + _str("rot13") + b"tR",  # rot13 text
        _STR
        + b"cbuiltins\nbytes\n]("
        + b"".join(b"K" + bytes([c]) for c in b"${eval:1}")
        + b"e\x85R\x85R",  # str(bytes([36, 123, ...])): a computed value
        b"cfunctools\npartial\n" + _STR + b"\x85R(" + _bytes(_UTF7) + _str("utf-7") + b"tR",
        _STR + _bytes(b"${eval:1}") + b"\x85R",  # str(b"${eval:1}"): its repr
    ],
    ids=["reduce", "newobj", "newobj-ex-keywords", "rot13", "computed-bytes", "partial", "repr"],
)
def test_a_string_built_when_loaded_is_not_read_as_harmless(tmp_path: Path, built: bytes) -> None:
    """``builtins.str`` and ``_codecs.encode`` are allowed (pickles call them), and they
    make a string at load time: decoded from UTF-7 bytes, ``"${eval:1}"`` is in no literal
    the pickle holds.  A DictConfig whose value is such a string was "safe"."""
    node = b"comegaconf.nodes\nAnyNode\n)\x81}(" + _str("_val") + built + b"ub"
    config = b"comegaconf.dictconfig\nDictConfig\n)\x81}(" + _str("_content") + b"}("
    config += _str("seed") + node + b"uub"
    path = tmp_path / "config.pkl"
    path.write_bytes(b"\x80\x04" + config + b".")
    _, found = _scan(tmp_path)
    entry = found["config.pkl"]
    assert entry["verdict"] == "unknown", entry


def test_a_plain_string_conversion_stays_safe(tmp_path: Path) -> None:
    """What real pickles spell: bytes as ``_codecs.encode(text, "latin1")`` (protocol 2),
    and ``str`` of plain values."""
    data = (
        b"\x80\x02}(" + _str("raw") + b"c_codecs\nencode\n("
        + _str("\x00\x01$\x7b") + _str("latin1") + b"tR"
        + _str("n") + _STR + b"(" + _int(3) + b"tR"
        + _str("s") + _STR + b"(" + _bytes(b"abc") + _str("utf-8") + b"tRu."
    )  # fmt: skip
    (tmp_path / "plain.pkl").write_bytes(data)
    _, found = _scan(tmp_path)
    assert found["plain.pkl"]["verdict"] == "safe", found["plain.pkl"]


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_an_interpolation_padded_into_a_long_text_is_not_read_past(
    tmp_path: Path, name: str
) -> None:
    """Texts over 1 MiB are read past, not kept: ``${eval:...}`` padded to 2 MiB in a
    DictConfig value read safe. Such a text is unknown, said with its size."""
    WRITERS[name](tmp_path / name, {**ORDINARY, "seed": EVAL + " " * (2 << 20)})
    _code, found = _scan(tmp_path)
    entry = found[name]
    assert entry["verdict"] == "unknown", entry
    reasons = " ".join(map(str, entry["reasons"]))  # type: ignore[call-overload]
    assert "not examined for OmegaConf interpolations" in reasons, reasons
