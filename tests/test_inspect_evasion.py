"""The evasion corpus (tests/fixtures/evasion/make_evasion.py): every malicious file is
caught, none is ``safe``, no benign twin is ``dangerous``, nothing runs.  Where a claim is
that the real unpickler accepts a stream a linter rejects, CPython's own ``pickle.loads``
proves it on a payload that only creates a file in ``tmp_path``.
"""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import struct
import sys
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from store.inspect import inspect_file, looks_like_model, pickle_scan
from store.inspect.pickle_ops import MAX_LINE, PickleInvalid, read_ops
from store.inspect.pickle_scan import MEMO_LIMIT, scan_bytes, scan_stream

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "evasion"))
import make_evasion as corpus

MODELS = Path(__file__).parent / "fixtures" / "models"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[corpus.Case]]:
    base = tmp_path_factory.mktemp("evasion")
    marker = base / "MARKER"
    return base / "corpus", marker, corpus.build(base / "corpus", marker)


def test_corpus_is_caught_and_nothing_runs(built: tuple[Path, Path, list[corpus.Case]]) -> None:
    folder, marker, cases = built
    malicious = [c for c in cases if c.malicious]
    benign = [c for c in cases if not c.malicious]
    assert len(malicious) >= 90 and len(benign) >= 19
    missed, alarms = [], []
    for case in cases:
        found = inspect_file(folder / case.name)
        if case.malicious:
            assert found.verdict != "safe", (case.name, found.reasons)
            if found.verdict != "dangerous" and not case.may_be_unknown:
                missed.append((case.name, found.verdict))
        else:
            if found.verdict != "safe":
                alarms.append((case.name, found.verdict, found.reasons[:2]))
    assert not missed
    assert not alarms
    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    ["lightning_partial_hparams.ckpt", "hf_training_args.bin", "benign_builtins_p0.pkl"],
)
def test_benign_twins_are_proved_safe(
    built: tuple[Path, Path, list[corpus.Case]], name: str
) -> None:
    folder, _, _ = built
    found = inspect_file(folder / name)
    assert found.verdict == "safe", found.reasons
    if name.startswith("lightning"):
        assert "functools.partial(torch.optim.adamw.AdamW)" in found.imports


def test_partial_of_something_else_is_not_safe() -> None:
    g = corpus.glob0
    unknown = corpus.p2(corpus.call(g("functools", "partial"), g("mypackage", "Model")))
    assert scan_bytes(unknown).verdict == "unknown"
    computed = corpus.p2(
        corpus.call(g("functools", "partial"), corpus.call(g("collections", "OrderedDict")))
    )
    assert scan_bytes(computed).verdict == "dangerous"


def _open_payload(marker: Path) -> bytes:
    """``open(marker, "w")`` at protocol 0: harmless, and proof that the stream loads."""
    payload: bytes = corpus.call(
        corpus.glob0("builtins", "open"), corpus.str0(str(marker)), b"S'w'\n"
    )
    return payload


@pytest.mark.parametrize(
    ("prefix", "encoding", "genops_fails"),
    [
        (b"I0x1f\n0", "ASCII", True),  # strtol base 0
        (b"I010\n0", "ASCII", False),  # C octal: genops reads 10, the loader 8
        (b"L0x10L\n0", "ASCII", True),
        (b"I 7\n0", "ASCII", False),
        (b"S'\xe9t\xe9'\n0", "latin1", True),  # numpy and joblib load with latin1
        (b"\x80\x04}q\x00(K\x01K\x02u0", "ASCII", False),  # protocols 1 and 4 mixed
        # _pickle reads INT, LONG, GET and PUT arguments as C strings: a NUL ends them
        (b"I1\x00junk\n0", "ASCII", True),
        (b"\x80\x02L5\x00junkL\n0", "ASCII", True),
        (b"Np1\x00junk\n0g1\x00more\n0", "ASCII", True),
    ],
)
def test_streams_genops_rejects_load_and_are_read(
    tmp_path: Path, prefix: bytes, encoding: str, genops_fails: bool
) -> None:
    marker = tmp_path / "loaded"
    data = prefix + _open_payload(marker) + b"."
    found = scan_bytes(data)
    assert found.verdict == "dangerous" and "builtins.open" in found.imports
    # The real loader runs it (creating only ``marker``): a scanner must read it too.
    pickle.loads(data, encoding=encoding).close()
    assert marker.exists()
    if genops_fails:
        with pytest.raises(ValueError):
            list(pickletools.genops(data))


def test_a_nul_in_a_number_does_not_hide_a_pickle(tmp_path: Path) -> None:
    """``I0\\x00...`` first: artlens called such a file "not a model" (n/a) or corrupt, and
    a folder walk skipped it, while ``pickle.load`` ran what followed."""
    marker = tmp_path / "loaded"
    data = b"I0\x00 not a number\n0" + _open_payload(marker) + b"."
    for name, head in (("model.pkl", b""), ("proto2.pkl", b"\x80\x02"), ("cache.dat", b"")):
        (tmp_path / name).write_bytes(head + data)
        found = inspect_file(tmp_path / name)
        assert found.verdict == "dangerous", (name, found.verdict, found.reasons)
    assert looks_like_model(data)
    pickle.loads(data).close()
    assert marker.exists()


def test_a_line_longer_than_the_reader_keeps_is_unknown_not_corrupt(tmp_path: Path) -> None:
    """A protocol-0 string over ``MAX_LINE`` bytes loads; it is no truncated file."""
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x02S'" + b"A" * MAX_LINE + b"'\n0N.")
    found = inspect_file(path)
    assert found.verdict == "unknown" and found.integrity is None, found.reasons
    assert pickle.loads(path.read_bytes()) is None


def test_reader_rejects_what_the_loader_rejects() -> None:
    for data in [b"I0x\n.", b"S'abc\n.", b"\xff.", b"\x80\x06."]:
        with pytest.raises((PickleInvalid, pickle.UnpicklingError, ValueError)):
            pickle.loads(data)
        with pytest.raises(PickleInvalid):
            list(read_ops(io.BytesIO(data)))
        assert scan_bytes(data).verdict == "corrupt"


def test_real_library_files_stay_safe() -> None:
    verdicts = {p.name: inspect_file(p).verdict for p in sorted(MODELS.iterdir())}
    assert "dangerous" not in verdicts.values()
    safe = {n for n, v in verdicts.items() if v == "safe"}
    assert {
        "state_dict.pt",
        "lightning.ckpt",
        "legacy.pt",
        "sklearn.joblib",
        "whole_model.pt",
    } <= safe


def test_memo_flood_is_unknown_and_fast() -> None:
    started = time.monotonic()
    found = scan_bytes(b"\x80\x04N" + b"\x94" * (MEMO_LIMIT + 10) + b".")
    assert found.verdict == "unknown"
    assert any("memo entries" in r or " s" in r for r in found.reasons)  # or time, if slow
    assert time.monotonic() - started < 30  # generous: the bench measures it


def test_repeated_findings_are_counted_once() -> None:
    body = b"".join(b"N\x94" for _ in range(3)) + b"q\x00q\x00q\x00" + b"0" * 7
    found = scan_bytes(b"\x80\x04" + body + b"N.")
    redefined = [r for r in found.reasons if "redefined" in r]
    assert len(redefined) == 1
    assert found.counts[redefined[0]] == 3


def test_budgets_stop_the_read_as_unknown_never_safe(tmp_path: Path) -> None:
    padded = b"\x80\x04\x8e" + struct.pack("<Q", 3 << 20) + bytes(3 << 20) + b"0N."
    # Past the raw-bytes budget (inside an archive every skipped byte is decompressed).
    capped = scan_stream(io.BytesIO(padded), skip_limit=1 << 20)
    assert capped.verdict == "unknown" and capped.capped
    # Past the opcode-bytes budget.
    assert scan_stream(io.BytesIO(b"\x80\x02" + b"N0" * 1000 + b"N."), limit=500).verdict == (
        "unknown"
    )
    # A long byte string on disk is seeked past, and what follows it is still read.
    evil = b"\x80\x04\x8e" + struct.pack("<Q", 70 << 20) + bytes(70 << 20) + b"0"
    path = tmp_path / "padded.pkl"
    path.write_bytes(evil + corpus.p0(corpus.call(corpus.glob0("os", "system"), b"S'x'\n")))
    found = inspect_file(path)
    assert found.verdict == "dangerous" and found.bytes_read < 1 << 20


def test_safetensors_header_over_budget_is_unknown(tmp_path: Path) -> None:
    count = 80_000
    body = (
        "{"
        + ",".join(
            f'"t{i}":{{"dtype":"U8","shape":[1],"data_offsets":[{i},{i + 1}]}}'
            for i in range(count)
        )
        + "}"
    )
    path = tmp_path / "many.safetensors"
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(body)) + body.encode())
        handle.truncate(8 + len(body) + count)
    found = inspect_file(path)
    assert found.verdict == "unknown"
    assert "budget" in found.reasons[0]


@pytest.mark.parametrize(
    "text",
    [
        "import os\nos.system('ls')\n",
        "cos\tnot a pickle\n",
        "a,b\n1,2\n",
        "key: value\n",
        '{"json": 1}',
        "(this is prose)\n",
    ],
)
def test_text_files_are_not_pickles(tmp_path: Path, text: str) -> None:
    path = tmp_path / "notes.txt"
    path.write_text(text)
    assert inspect_file(path).verdict == "n/a"


def test_classes_created_bare_are_safe_and_constructed_are_not() -> None:
    g, call = corpus.glob0, corpus.call
    linear = g("torch.nn.modules.linear", "Linear")
    bare = corpus.p0(
        call(g("copy_reg", "_reconstructor"), linear, g("__builtin__", "object"), b"N")
    )
    assert scan_bytes(bare).verdict == "safe"  # how protocols 0 and 1 save a module
    assert scan_bytes(corpus.p2(linear + b")\x81")).verdict == "safe"  # NEWOBJ
    built = corpus.p2(call(linear, b"K\x01K\x01"))
    assert scan_bytes(built).verdict == "unknown"  # Linear(1, 1) runs __init__
    computed = corpus.p2(call(call(g("collections", "OrderedDict"))))
    assert scan_bytes(computed).verdict == "dangerous"  # calls what a call returned


def _gguf_with_template(template: str) -> bytes:
    def text(value: str) -> bytes:
        raw = value.encode()
        return struct.pack("<Q", len(raw)) + raw

    kv = text("tokenizer.chat_template") + struct.pack("<I", 8) + text(template)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv


def test_gguf_chat_template_that_escapes_jinja_is_dangerous(tmp_path: Path) -> None:
    evil = "{{ cycler.__init__.__globals__.os.popen('touch x').read() }}"
    (tmp_path / "evil.gguf").write_bytes(_gguf_with_template(evil))
    (tmp_path / "good.gguf").write_bytes(
        _gguf_with_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    )
    assert inspect_file(tmp_path / "evil.gguf").verdict == "dangerous"
    assert inspect_file(tmp_path / "good.gguf").verdict == "safe"


@pytest.mark.parametrize(
    "template",
    [
        "{{ ((cycler|attr('__in'~'it__')|attr('__glo'~'bals__'))['o'~'s']|attr('po'~'pen'))"
        "('id')|attr('read')() }}",
        "{{ request|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
        "{{ lipsum['_'*2~'glo'~'bals'~'_'*2] }}",
        "{% set u = (()|select|string)[24] %}{{ cycler[u~u~'init'~u~u] }}",
        "{{ cycler[('%c'|format(95))*2 ~ 'init' ~ ('%c'|format(95))*2] }}",
        "{{ cycler[dict(_init_=1)|first] }}",
    ],
)
def test_gguf_chat_template_that_builds_names_is_never_safe(tmp_path: Path, template: str) -> None:
    """No dunder name is written out whole, so no probe matches: the names are built."""
    (tmp_path / "built.gguf").write_bytes(_gguf_with_template(template))
    found = inspect_file(tmp_path / "built.gguf")
    assert found.verdict in ("unknown", "dangerous"), found.reasons


@pytest.mark.parametrize(
    "template",
    [
        "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
        "(loop.index0 % 2 == 0) %}{{ raise_exception('Roles must alternate') }}{% endif %}"
        "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}"
        "{% endfor %}",
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
        "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}",
        "{%- set ns = namespace(found=false) -%}{% if tools is not none %}"
        "{{ tools | tojson(indent=4) }}{% endif %}"
        "{{ (messages|selectattr('role', 'equalto', 'system')|list)[0]['content'] }}"
        "{{ strftime_now('%d %b %Y') }}",
    ],
)
def test_real_gguf_chat_templates_stay_safe(tmp_path: Path, template: str) -> None:
    (tmp_path / "real.gguf").write_bytes(_gguf_with_template(template))
    found = inspect_file(tmp_path / "real.gguf")
    assert found.verdict == "safe", found.reasons


def test_old_joblib_zlib_and_a_lying_dtype_size(tmp_path: Path) -> None:
    evil = corpus.evil_pickle(tmp_path / "MARKER")
    (tmp_path / "old.joblib").write_bytes(
        b"ZF" + hex(len(evil)).encode().ljust(19) + zlib.compress(evil)
    )
    assert inspect_file(tmp_path / "old.joblib").verdict == "dangerous"
    # A float64 array whose dtype state claims 1-byte elements: joblib skips 8 bytes per
    # element whatever the state says, so the reader must too, or it reads other bytes.
    g = corpus.glob0
    dtype = (
        g("numpy", "dtype")
        + corpus.ustr("f8")
        + b"\x89\x88\x87R"
        + b"(K\x03U\x01<NNNJ\x01\x00\x00\x00J\xff\xff\xff\xffK\x00tb"
    )
    state = b"}(" + corpus.ustr("shape") + b"K\x04\x85" + corpus.ustr("dtype") + dtype
    state += corpus.ustr("order") + corpus.ustr("C") + b"u"
    wrapper = g("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81" + state + b"b"
    hidden = corpus.call(g("os", "system"), corpus.ustr("x"))
    filler = bytes(26)  # joblib's 32 bytes: 4 a 1-byte reader skips, then the shield
    shield = b"C" + bytes([len(filler) + len(hidden)])  # hides the rest from that reader
    data = b"\x80\x02]" + wrapper + bytes(4) + shield + filler + hidden + b"00."
    assert len(bytes(4) + shield + filler) == 32
    assert scan_bytes(data).verdict == "dangerous"


def test_pickles_are_found_by_content_past_the_first_kilobyte(tmp_path: Path) -> None:
    from store.integrity import check_paths

    evil = corpus.call(corpus.glob0("os", "system"), corpus.str0("touch x"))
    padding = b"(" + b"I1\n" * 600 + b"l0"  # a benign list, then POP
    (tmp_path / "notes.txt").write_bytes(padding + evil + b".")
    (tmp_path / "words.txt").write_bytes(b"cat\ndog\n")
    (tmp_path / "prose.md").write_text("(a parenthesis and some prose)\n" * 100)
    found = {Path(c.path).name: c.verdict for c in check_paths([tmp_path])}
    assert found == {"notes.txt": "dangerous"}


def test_hostile_shapes_cost_little(monkeypatch: pytest.MonkeyPatch) -> None:
    """A huge tuple reused as a dict key 100k times, and 200k nested tuples: the unpickler
    loads both, so neither may be corrupt, and neither may take long.  The per-file time
    budget is lifted (a loaded machine can reach it, and then ``unknown`` is the right
    answer): what is checked is the reading, and its cost by the clock below."""
    monkeypatch.setattr(pickle_scan, "TIME_LIMIT", 120.0)
    big = b"(" + b"K\x01" * 100_000 + b"tq\x000"
    keys = b"}(" + b"h\x00N" * 100_000 + b"u"
    started = time.monotonic()
    assert scan_bytes(b"\x80\x02" + big + keys + b".").verdict == "safe"
    deep = b"\x80\x02" + b"(" * 200_000 + b"N" + b"t" * 200_000 + b"."
    assert scan_bytes(deep).verdict == "safe"
    assert time.monotonic() - started < 30  # generous on a loaded machine; ~1 s idle


@pytest.mark.parametrize("code", ["f\u00b2", "f" + "9" * 5000])
def test_a_dtype_size_int_cannot_read_is_unreadable_not_a_python_error(code: str) -> None:
    """A dtype like "f²" (isdigit yet int refuses it) or 5000 digits: unreadable, said so."""
    g = corpus.glob0
    dtype = g("numpy", "dtype") + corpus.ustr(code) + b"\x89\x88\x87R"
    state = b"}(" + corpus.ustr("shape") + b"K\x04\x85" + corpus.ustr("dtype") + dtype + b"u"
    wrapper = g("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81" + state + b"b"
    result = scan_bytes(b"\x80\x02]" + wrapper + bytes(32) + b"0.")
    assert result.verdict == "unknown"
    assert any("unreadable dtype" in r and len(r) < 200 for r in result.reasons), result.reasons


def _zip_of(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


_EVIL = corpus.p2(corpus.call(corpus.glob0("os", "system"), corpus.ustr("id")))
_TRAILING = b"\x80\x02}." + b"\x00" + _EVIL
"""A complete empty dict, then bytes the unpickler of a single pickle never reads but a
reader of several (torch's legacy format, joblib) trips over: unknown, as a bare file."""


@pytest.mark.parametrize(
    ("entries", "verdict"),
    [
        ([("archive/data.pkl", _TRAILING), ("archive/version", b"3\n")], "unknown"),
        ([("archive/data.pkl", b"\x80\x02}."), ("archive/extra.pkl", _TRAILING)], "unknown"),
        ([("weights", _TRAILING)], "unknown"),
        ([("archive/data.pkl", b"\x80\x04]]\x93."), ("archive/version", b"3\n")], "dangerous"),
        ([("archive/data.pkl", b"\x80\x02}."), ("archive/version", b"3\n")], "safe"),
    ],
    ids=["torch-data-pkl", "torch-other-pkl", "zip-member", "torch-computed-global", "clean"],
)
def test_a_container_is_as_bad_as_its_worst_member(
    tmp_path: Path, entries: list[tuple[str, bytes]], verdict: str
) -> None:
    """A member's own verdict folds into the container's, worst first (its reasons carry
    the member's name in front, which once hid their "unknown:"/"dangerous:" from the fold);
    the worst member, as a bare file, says the same."""
    path = tmp_path / "model.pt"
    path.write_bytes(_zip_of(entries))
    found = inspect_file(path)
    assert found.verdict == verdict, found.reasons
    worst_member = max((data for name, data in entries if name != "archive/version"), key=len)
    (tmp_path / "bare.pkl").write_bytes(worst_member)
    assert inspect_file(tmp_path / "bare.pkl").verdict == verdict


def _tar_of(name: str, data: bytes) -> bytes:
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_archives_inside_archives_are_inspected_as_files(tmp_path: Path) -> None:
    """A TorchServe .mar holds a model.pt, a .nemo tar a checkpoint: the member is inspected
    as a file of its own (in place when stored, decompressed within a budget when not), and
    what could not be inspected is unknown, never left out."""
    torch_evil = _zip_of([("archive/data.pkl", _EVIL), ("archive/version", b"3\n")])
    torch_ok = _zip_of([("archive/data.pkl", pickle.dumps({"w": 1.0}, protocol=2))])
    deep = _EVIL
    for level in range(5):
        deep = _zip_of([(f"level{level}.zip" if level else "x.pkl", deep)])
    cases = {
        "stored.mar": (_zip_of([("model.pt", torch_evil)]), "dangerous"),
        "deflated.mar": (_zip_of([("model.pt", torch_evil)], zipfile.ZIP_DEFLATED), "dangerous"),
        "clean.mar": (_zip_of([("model.pt", torch_ok)], zipfile.ZIP_DEFLATED), "safe"),
        "gzipped.zip": (_zip_of([("model.pkl.gz", zlib.compress(_EVIL))]), "dangerous"),
        "model.nemo": (_tar_of("model_weights.ckpt", torch_evil), "dangerous"),
        "deep.zip": (deep, "unknown"),
        "big.zip": (
            _zip_of([("inner", b"PK\x03\x04" + bytes(65 << 20))], zipfile.ZIP_DEFLATED),
            "unknown",
        ),
    }
    for name, (data, verdict) in cases.items():
        (tmp_path / name).write_bytes(data)
        found = inspect_file(tmp_path / name)
        assert found.verdict == verdict, (name, found.reasons)
        assert found.verdict == "safe" or any("nested" in r for r in found.reasons), name
    assert "nested over 3 deep" in inspect_file(tmp_path / "deep.zip").reasons[0]


def test_a_pickle_ending_at_the_decompression_cap_is_unknown(tmp_path: Path) -> None:
    """Whatever follows the decompressed-bytes budget is unread, even where a pickle ends
    exactly there: a multi-pickle loader would read the dangerous one after it."""
    from store.inspect import DECOMPRESS_LIMIT

    skipped = DECOMPRESS_LIMIT - 12  # PROTO, BINBYTES8 and its length, then STOP at the cap
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    parts = [packer.compress(b"\x80\x02\x8e" + struct.pack("<Q", skipped))]
    zeros = bytes(1 << 20)
    for start in range(0, skipped, len(zeros)):
        parts.append(packer.compress(zeros[: min(len(zeros), skipped - start)]))
    parts += [packer.compress(b"." + _EVIL), packer.flush()]
    path = tmp_path / "model.pkl.gz"
    path.write_bytes(b"".join(parts))
    found = inspect_file(path)
    assert found.verdict == "unknown", found.reasons
    assert any("decompressed bytes" in r for r in found.reasons)


def test_a_polyglot_that_outruns_the_pickle_sniff_is_unknown(tmp_path: Path) -> None:
    """A valid safetensors file whose bytes are also a pickle that pushes 1 MB of harmless
    byte strings (past the sniff's budget) before it imports os.system: the format reading
    alone says safe, so the sniff stopping by budget must make it unknown."""
    payload = corpus.p0(corpus.call(corpus.glob0("os", "system"), corpus.str0("id")))
    tail = b'"},"w":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}' % (
        len(payload),
        len(payload),
    )
    # The header length's low bytes are SHORT_BINBYTES of 30 bytes (up to the pad's start);
    # the pad is more SHORT_BINBYTES; the last one swallows the end of the JSON.
    length = 17 * 65536 + 0x1E43
    chunks, rest = divmod(length - 24 - 2 - len(tail) - 2 - 32, 64)
    last = 32 + rest
    pad = b"C>" + b"a" * 62
    header = (
        b'{"__metadata__":{"pad":"' + pad * chunks + b"C" + bytes([last]) + b"b" * last
        + b"C" + bytes([len(tail)]) + tail
    )  # fmt: skip
    assert len(header) == length and 0x20 <= last <= 0x7E
    data = struct.pack("<Q", length) + header + payload
    imported: list[tuple[str, str]] = []

    class Recorder(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            imported.append((module, name))
            return print  # never os.system: the proof only needs the import reached

    Recorder(io.BytesIO(data)).load()
    assert imported == [("os", "system")]
    path = tmp_path / "model.safetensors"
    path.write_bytes(data)
    found = inspect_file(path)
    assert found.format == "safetensors"
    assert found.verdict == "unknown", found.reasons


_LONG_FIRST = corpus.p2(
    corpus.ustr("x" * 2000) + b"0" + corpus.call(corpus.glob0("os", "system"), corpus.ustr("id"))
)
"""A pickle that pushes (and pops) a 2 kB string before it imports os.system: its first
kilobyte names nothing, yet ``pickle.loads`` runs it."""


def test_a_zip_entry_whose_pickle_starts_past_the_sniff_is_read(tmp_path: Path) -> None:
    """An entry without a pickle name is read to its end when an unpickler gets past its
    first bytes; words that read as a global (``cat\\ndog``) and prose stay data."""
    evil = _zip_of([("payload", _LONG_FIRST), ("readme.txt", b"hello\n")])
    (tmp_path / "bundle.zip").write_bytes(evil)
    found = inspect_file(tmp_path / "bundle.zip")
    assert found.verdict == "dangerous", found.reasons
    assert "os.system" in found.imports
    text = [("vocab.txt", b"cat\ndog\n" * 50), ("notes.md", b"(a parenthesis)\n" * 100)]
    (tmp_path / "text.zip").write_bytes(_zip_of(text))
    assert inspect_file(tmp_path / "text.zip").verdict == "n/a"


def _graph(expr: str = "Symbol('s0', positive=True, integer=True)", guard: str = "") -> bytes:
    """The parts of a torch.export graph JSON that carry code (``expr_str``, guards)."""
    sym = {"as_expr": {"expr_str": expr, "hint": {"as_int": 4}}}
    graph = {"graph": {"sym_int_values": {"s0": sym}, "nodes": []}}
    document = {"graph_module": graph, "guards_code": [guard] if guard else [],
                "range_constraints": {"s0": {"min_val": 2, "max_val": None}}}  # fmt: skip
    return json.dumps(document).encode()


def _export(
    sample: bytes, *more: tuple[str, bytes], graph: bytes | None = None, root: str = "model"
) -> bytes:
    """A PyTorch 2 export's layout (as torch.export.save 2.13 writes it)."""
    raw = struct.pack("<4f", 0.5, -1.0, 2.0, 0.25)
    return _zip_of(
        [
            (f"{root}/data/weights/weight_0", raw),
            (f"{root}/data/weights/model_weights_config.json", b'{"config": {}}'),
            (f"{root}/models/model.json", graph or _graph()),
            (f"{root}/data/sample_inputs/model.pt", sample),
            *[(f"{root}/{name}", data) for name, data in more],
            (f"{root}/archive_format", b"pt2"),
            (f"{root}/archive_version", b"0"),
        ]
    )


def test_a_pytorch2_export_is_as_bad_as_its_worst_member_and_never_safe(tmp_path: Path) -> None:
    """torch.export.load torch.loads the sample inputs (weights_only=False when the safe
    load fails) and pickled weights, pickle.loads opaque constants, sympify-evals the
    graph's expressions; ExportedProgram.module() execs its guards.  So a .pt2 is found by
    content, every entry an unpickler reads is scanned, plain escapes in the graph are
    dangerous, and a clean one is unknown, with the reason first."""
    inputs = _zip_of([("model/data.pkl", pickle.dumps(((), {}), protocol=2))])
    evil_torch = _zip_of([("evil/data.pkl", _EVIL), ("evil/version", b"3\n")])
    escape = "Symbol('s0') + 0*__import__('os').system('id')"
    old_layout = [
        ("serialized_exported_program.json", _graph()),
        ("serialized_example_inputs.pt", evil_torch),
        ("version", b"1"),
    ]
    cases = {
        "clean.pt2": (_export(inputs), "unknown"),
        "named_anyhow.bin": (_export(inputs), "unknown"),
        "sample_inputs.pt2": (_export(evil_torch), "dangerous"),
        "pickled_weight.pt2": (_export(inputs, ("data/weights/weight_1", evil_torch)), "dangerous"),
        "opaque.pt2": (_export(inputs, ("data/constants/opaque_obj_0", _LONG_FIRST)), "dangerous"),
        "sympy.pt2": (_export(inputs, graph=_graph(expr=escape)), "dangerous"),
        "guard.pt2": (
            _export(inputs, graph=_graph(guard="__import__('os').getpid() > 0")),
            "dangerous",
        ),
        "aoti.pt2": (_export(inputs, ("data/aotinductor/model/model.so", b"\x7fELF")), "unknown"),
        "torch25.pt2": (_zip_of(old_layout), "dangerous"),
    }
    for name, (data, verdict) in cases.items():
        (tmp_path / name).write_bytes(data)
        found = inspect_file(tmp_path / name)
        assert (found.format, found.verdict) == ("pt2", verdict), (name, found.reasons)
        assert found.reasons[0].startswith("unknown: PyTorch 2 export"), name
    aoti = inspect_file(tmp_path / "aoti.pt2").reasons
    assert any("AOTInductor" in r for r in aoti)
    sympy = inspect_file(tmp_path / "sympy.pt2").reasons
    assert any("expr_str reaches Python internals" in r for r in sympy), sympy


def _torchscript(data_pkl: bytes) -> bytes:
    """A TorchScript archive as ScriptModule.save writes it: the module's pickle, its code
    and the code's debug pickles (source ranges tagged by torch.jit._pickle.build_intlist)."""
    intlist = corpus.glob0("torch.jit._pickle", "build_intlist") + b"](K\x01K\x02e\x85R"
    debug = b"\x80\x02(" + corpus.ustr("FORMAT_WITH_STRING_TABLE") + intlist + b"t."
    return _zip_of(
        [
            ("net/data.pkl", data_pkl),
            ("net/code/__torch__.py", b"class Net(Module):\n  __parameters__ = []\n"),
            ("net/code/__torch__.py.debug_pkl", debug),
            ("net/constants.pkl", b"\x80\x02)."),
            ("net/version", b"3\n"),
        ]
    )


def test_torchscript_list_tags_are_not_an_alarm_but_an_os_system_is(tmp_path: Path) -> None:
    """build_intlist and its siblings return their argument: a TorchScript archive that
    uses them is unknown (its code), never dangerous for them; os.system in its data.pkl
    is dangerous all the same."""
    tagged = corpus.glob0("torch.jit._pickle", "restore_type_tag")
    state = (
        b"}" + corpus.ustr("sizes") + tagged + b"](K\x02e" + corpus.ustr("List[int]") + b"\x86Rs"
    )
    module = b"\x80\x02" + corpus.glob0("__torch__", "Net") + b")\x81" + state + b"b."
    (tmp_path / "scripted.pt").write_bytes(_torchscript(module))
    found = inspect_file(tmp_path / "scripted.pt")
    assert (found.format, found.verdict) == ("torch-zip", "unknown"), found.reasons
    assert found.reasons[0].startswith("unknown: TorchScript archive")
    assert {"torch.jit._pickle.build_intlist", "torch.jit._pickle.restore_type_tag"} <= set(
        found.imports
    )
    (tmp_path / "evil.pt").write_bytes(_torchscript(_EVIL))
    assert inspect_file(tmp_path / "evil.pt").verdict == "dangerous"


def test_archives_holding_python_are_at_least_unknown(tmp_path: Path) -> None:
    """TorchServe runs a .mar's handler and torch.package imports its modules: a zip that
    holds Python source or bytecode, or a MAR-INF/MANIFEST.json, is never safe nor n/a."""
    plain = pickle.dumps({"w": 1.0}, protocol=2)
    model = _zip_of([("archive/data.pkl", plain)])
    evil_model = _zip_of([("archive/data.pkl", _EVIL), ("archive/version", b"3\n")])
    manifest = ("MAR-INF/MANIFEST.json", b'{"model": {"handler": "handler.py"}}')
    handler = ("handler.py", b"import os\nos.system('id')\n")
    cases = {
        "model.mar": ([manifest, handler, ("model.pt", model)], "mar", "unknown"),
        "weights.mar": ([manifest, ("model.safetensors", b"\x08\x00")], "mar", "unknown"),
        "bundle.zip": ([("pkg/handler.pyc", b"\xa7\r\r\n"), ("w.pkl", plain)], "zip", "unknown"),
        "code.zip": ([handler], "zip", "unknown"),
        "evil.mar": ([manifest, handler, ("model.pt", evil_model)], "mar", "dangerous"),
    }
    for name, (entries, fmt, verdict) in cases.items():
        (tmp_path / name).write_bytes(_zip_of(entries))
        found = inspect_file(tmp_path / name)
        assert (found.format, found.verdict) == (fmt, verdict), (name, found.reasons)
    reasons = inspect_file(tmp_path / "model.mar").reasons
    assert any("Python code that the loader runs" in r for r in reasons), reasons
    assert any("TorchServe" in r for r in reasons), reasons


def test_a_keras_archive_keeps_its_container_tricks(tmp_path: Path) -> None:
    """A Keras zip is unknown for its config, and a duplicated entry name still makes it
    dangerous (which of the two a loader reads is its choice)."""
    import warnings

    entries = [("config.json", b"{}"), ("model.weights.h5", b"a"), ("model.weights.h5", b"b")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate it writes
        data = _zip_of(entries)
    (tmp_path / "model.keras").write_bytes(data)
    found = inspect_file(tmp_path / "model.keras")
    assert found.verdict == "dangerous", found.reasons
    assert any("Keras" in r for r in found.reasons)
