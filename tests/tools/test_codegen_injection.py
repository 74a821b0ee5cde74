"""Text from users and checkpoints never becomes code: each code generator (the exported scripts, the executor's
generated call list, dump's DOT) with hostile names — quotes, triple quotes, newlines, backslashes, unicode.

A hostile string here tries to run ``touch PWNED`` when the generated code is imported or run; every test
runs in a temporary working directory and checks that no ``PWNED`` file appears.
"""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys

import pytest
import torch

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.lowering.ir import TensorSpec
from fx2ttnn.lowering.printer import to_dot
from fx2ttnn.passes.lower_data_movement import LowerDataMovement
from fx2ttnn.passes.lower_elementwise import LowerElementwise
from fx2ttnn.passes.lower_linear import LowerLinear
from fx2ttnn.runtime.backend import open_backend
from fx2ttnn.runtime.executor import BoundProgram
from fx2ttnn.runtime.generate import upload
from fx2ttnn.tools import export as export_tool

from tests.passes.helpers import capture_module, finish, run_passes, to_host
from tests.utils import run_main

PAYLOAD = '__import__("os").system("touch PWNED")'
HOSTILE = [
    'a"""and(__import__("os").system("touch\\x20PWNED"))and"""',   # the checkpoint directory name
    "q'\"mixed\"'quotes" + PAYLOAD,
    f'new\nline"""\n{PAYLOAD}\n#',
    f"back\\slash\\\\\"\"\"{PAYLOAD}\\",
    f"ünïcödé 日本語 😀 \u2028{PAYLOAD}\u2029\x0c\r",
]
IDS = ["issue", "quotes", "newlines", "backslashes", "unicode"]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A working directory where a successful injection would leave ``PWNED``."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work
    assert not (work / "PWNED").exists(), "generated code ran the injected command"


# -- exported scripts ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", HOSTILE, ids=IDS)
def test_export_holds_a_hostile_checkpoint_path_as_a_literal(name, checkpoint, sandbox, monkeypatch):
    model_dir = sandbox.parent / name
    shutil.copytree(checkpoint / "model", model_dir)
    out = sandbox.parent / "out"
    rc, stdout, stderr = run_main(["export", "--out", str(out), "--model", str(model_dir), "--program", "postnet",
                                   "--dtype", "float32", "--max-steps", "32"])
    assert rc == 0, stderr
    script = out / "postnet.py"
    monkeypatch.setenv("FX2TTNN_TTNN", "reference")
    spec = importlib.util.spec_from_file_location("exported_hostile", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing the script runs its top level: the docstring is where it broke
    assert module.SOURCE == str(model_dir)
    assert " ".join(str(model_dir).split()) in " ".join(module.__doc__.split())  # textwrap may re-flow spaces
    proc = subprocess.run([sys.executable, str(script), "--reference", "--check"], capture_output=True, text=True,
                          cwd=sandbox, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "check passed" in proc.stdout


@pytest.mark.parametrize("name", HOSTILE, ids=IDS)
def test_export_escapes_hostile_module_names_in_comments_and_docstrings(name, checkpoint, sandbox, monkeypatch):
    """HF module paths (comments, variable names) and program input names (signature, docstring) from a model."""
    from transformers import SpeechT5ForTextToSpeech
    model = SpeechT5ForTextToSpeech.from_pretrained(checkpoint / "model").eval()
    tts = export_tool.lower_programs(model, None, dtype="float32", max_steps=32, names=["postnet"])
    variant = tts.variant("postnet", tts.default_key("postnet"))
    for node in variant.lowered.graph_module.graph.nodes:
        node.meta["source_module"] = name
        if node.op == "call_function" and node.kwargs:
            node.meta["fallback_reason"] = name
    writer = export_tool.ScriptWriter(variant.lowered, program="postnet", key=variant.key, dtype="float32",
                                      max_steps=32, source=name)
    code = writer.render()
    monkeypatch.setenv("FX2TTNN_TTNN", "reference")
    namespace: dict = {"__name__": "exported_hostile", "__file__": str(sandbox / "postnet.py")}
    exec(compile(code, "postnet.py", "exec"), namespace)  # noqa: S102 - the point of the test
    assert namespace["SOURCE"] == name
    for line in code.splitlines():
        if line.lstrip().startswith("#") and "touch" in line:
            assert "\n" not in line and "\u2028" not in line
    assert all(ch.isprintable() or ch in "\n" for ch in code)  # every other line break or control char escaped


@pytest.mark.parametrize("bad", ["x; import os", "in", "ü", "a.b", ""])
def test_export_refuses_names_that_are_not_identifiers(bad, checkpoint):
    from transformers import SpeechT5ForTextToSpeech
    model = SpeechT5ForTextToSpeech.from_pretrained(checkpoint / "model").eval()
    tts = export_tool.lower_programs(model, None, dtype="float32", max_steps=32, names=["postnet"])
    lowered = tts.variant("postnet", tts.default_key("postnet")).lowered
    with pytest.raises(export_tool.ExportError, match="not a plain Python identifier"):
        export_tool.ScriptWriter(lowered, program=bad, key=(1, 64), dtype="float32", max_steps=32, source="x")
    original = lowered.signature.inputs[0]
    lowered.signature.inputs[0] = bad
    try:
        with pytest.raises(export_tool.ExportError, match="not a plain Python identifier"):
            export_tool.ScriptWriter(lowered, program="postnet", key=(1, 64), dtype="float32", max_steps=32,
                                     source="x").render()
    finally:
        lowered.signature.inputs[0] = original


# -- the executor's generated call list -----------------------------------------------------------------------
class EvilStr(str):
    def __repr__(self) -> str:
        return PAYLOAD


class EvilInt(int):
    def __repr__(self) -> str:
        return PAYLOAD


def _linear_program() -> tuple[torch.fx.GraphModule, torch.Tensor]:
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 32)

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lin

        def forward(self, x):
            return (torch.relu(self.lin(x)),)

    x = torch.randn(1, 4, 64)
    gm = run_passes(capture_module(M(), x, names=["x"]), LowerLinear(), LowerElementwise(), LowerDataMovement())
    return finish(gm, [x], device_inputs={"x": TensorSpec(tuple(x.shape), "float32", "TILE", "DRAM", True)}), x


def test_executor_writes_only_exact_literals(sandbox):
    gm, x = _linear_program()
    backend = open_backend("reference")
    plain = BoundProgram(gm, backend, name="plain")
    want = to_host(plain(upload(backend.ttnn, backend.device, plain.input_specs[0], x))[0])
    linear = next(n for n in gm.graph.nodes if n.target is ops.linear and n.kwargs.get("activation"))
    linear.update_kwarg("activation", EvilStr(linear.kwargs["activation"]))
    for node in gm.graph.nodes:
        node.meta["source_module"] = HOSTILE[2]
    prog = BoundProgram(gm, backend, name=HOSTILE[0])
    assert "touch" not in prog.source and "import" not in prog.source
    got = to_host(prog(upload(backend.ttnn, backend.device, prog.input_specs[0], x))[0])
    assert torch.equal(got, want)
    for value in (EvilStr("relu"), EvilInt(3), {EvilStr("k"): 1}, [EvilInt(1)], (EvilStr("a"),), float("nan")):
        assert "touch" not in prog._expr(value)
    assert prog._expr("relu") == "'relu'" and prog._expr(3) == "3" and prog._expr(0.5) == "0.5"


# -- dump's DOT --------------------------------------------------------------------------------------------------
_DOT_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], s[1:-1])


@pytest.mark.parametrize("name", HOSTILE, ids=IDS)
def test_dot_quotes_hostile_titles_and_module_names(name):
    gm, _ = _linear_program()
    groups = {n: name for n in gm.graph.nodes if n.op == "call_function"}
    dot = to_dot(gm, title=name, groups=groups)
    strings = _DOT_STRING.findall(dot)
    bare = _DOT_STRING.sub("S", dot)
    assert '"' not in bare and "\\" not in bare  # every quote and backslash is inside a well-formed string
    assert "touch" not in bare
    assert any(_unquote(s) == name for s in strings)  # the label round-trips
    assert dot.splitlines()[0].startswith("digraph ") and dot.rstrip().endswith("}")
    if shutil.which("dot"):
        proc = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
