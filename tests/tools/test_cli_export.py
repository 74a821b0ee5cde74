"""``fx2ttnn export``: standalone ttnn scripts for a tiny saved checkpoint, run on the reference ttnn and
compared with the in-process runtime; the script's ttnn selection; one-line CLI errors.

One export in all (encoder + decoder_step, float32, in-process ``main``), two script runs in a subprocess;
every CLI error case fails before lowering.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from fx2ttnn.tools import export as export_tool

from tests.conftest import tiny_config
from tests.utils import pcc, run_main

PCC = 0.9999
EXPORTED = ("encoder", "decoder_step")
FILES = ("{}.py", "{}.safetensors", "{}_inputs.safetensors", "{}_expected.safetensors")





def load_script(path: Path, monkeypatch, which: str = "reference"):
    """Import an exported script as a module, its ttnn chosen by FX2TTNN_TTNN."""
    monkeypatch.setenv("FX2TTNN_TTNN", which)
    spec = importlib.util.spec_from_file_location(f"exported_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module



@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    """One in-process export of encoder + decoder_step (float32); the lowerings it made are kept."""
    out = tmp_path_factory.mktemp("export") / "nested" / "out"
    lowered = {}
    real = export_tool.lower_programs

    def recording(*args, **kwargs):
        tts = real(*args, **kwargs)
        for name in kwargs["names"]:
            lowered[name] = tts
        return tts

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(export_tool, "lower_programs", recording)
        rc, stdout, stderr = run_main(["export", "--out", str(out), "--model", str(checkpoint / "model"),
                                       "--program", "encoder", "--program", "decoder_step", "--dtype", "float32",
                                       "--max-steps", "32", "--seed", "1"])
    return rc, stdout, stderr, out, lowered


def test_export_writes_files(exported):
    rc, stdout, stderr, out, lowered = exported
    assert rc == 0, stderr
    expected = {f.format(n) for n in EXPORTED for f in FILES} | {"README.txt"}
    assert {p.name for p in out.iterdir()} == expected  # no postnet/vocoder, no temp files left
    lines = stdout.splitlines()
    assert len(lines) == 3 and lines[-1] == f"wrote {out / 'README.txt'}", stdout
    for line, name in zip(lines, EXPORTED):
        assert line.startswith(f"exported {name} to {out / (name + '.py')}: ") and " ttnn calls per run" in line
    assert "in its prologue" in lines[1]
    readme = (out / "README.txt").read_text()
    assert "FX2TTNN_TTNN=reference python decoder_step.py --check" in readme
    assert sorted(lowered) == sorted(EXPORTED)
    assert "error:" not in stderr


def test_weights_and_inputs_files(exported):
    from safetensors.torch import load_file
    *_, out, lowered = exported
    for name in EXPORTED:
        variant = lowered[name].variant(name, lowered[name].default_key(name))
        weights = load_file(str(out / f"{name}.safetensors"))
        assert weights and all("." in k or "_" in k for k in weights)
        inputs = load_file(str(out / f"{name}_inputs.safetensors"))
        want = set(variant.lowered.input_specs)
        if variant.lowered.prologue is not None:  # the prologue's inputs stand for what it computes
            want = (want - set(variant.lowered.prologue.signature.outputs)) | set(variant.lowered.prologue.input_specs)
        assert set(inputs) == want
        expected = load_file(str(out / f"{name}_expected.safetensors"))
        assert set(expected) == set(variant.lowered.signature.outputs) | set(variant.lowered.signature.mutated_inputs)


def _imports(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, enclosing function names) of every import in ``tree``."""
    found = []

    def visit(node, scopes):
        if isinstance(node, ast.Import):
            found.extend((a.name, scopes) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", scopes))
        for child in ast.iter_child_nodes(node):
            visit(child, scopes + [node.name] if isinstance(node, ast.FunctionDef) else scopes)

    visit(tree, [])
    return found


@pytest.mark.parametrize("name", EXPORTED)
def test_script_is_standalone(exported, name):
    *_, out, _ = exported
    source = (out / f"{name}.py").read_text()
    tree = ast.parse(compile(source, f"{name}.py", "exec", ast.PyCF_ONLY_AST))
    imports = _imports(tree)
    for module, scopes in imports:
        if module.startswith("fx2ttnn") or module == "ttnn":
            assert scopes == ["use_ttnn"], (module, scopes)  # only in the ttnn-selection function
        else:
            assert module.split(".")[0] in {"argparse", "math", "operator", "os", "sys", "time", "pathlib", "torch",
                                            "safetensors"}, module
    assert ("fx2ttnn.runtime", ["use_ttnn"]) in imports and ("ttnn", ["use_ttnn"]) in imports
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {"use_ttnn", "load_parameters", "prologue", "run", "upload_inputs", "main"} <= functions
    run_args = [a.arg for a in next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run").args.args]
    assert run_args[:2] == ["device", "params"]
    body = source[source.index("\ndef run("):]
    assert "ttnn.linear(" in body and "# speecht5." in body
    assert "ttnn.TILE_LAYOUT" in source and "ttnn.float32" in source
    if name == "decoder_step":
        # readable names from the HF modules, in-place cache updates as statements
        assert "layers_0_self_attn_qkv = ttnn.linear(" in body
        assert "layers_0_self_attn_q, layers_0_self_attn_k, layers_0_self_attn_v = " in body
        assert "\n    ttnn.experimental.paged_update_cache(self_k_0, layers_0_self_attn_k" in body
        assert "ttnn.create_sharded_memory_config(" in body and "ttnn.ShardStrategy.HEIGHT" in body
        assert "\ndef prologue(device, params, speaker, cross_attention_mask):" in source
    else:
        assert "layers_0_attention_q, layers_0_attention_k, layers_0_attention_v = " in body
        assert "ttnn.transformer.scaled_dot_product_attention(" in body


def _in_process(tts, name: str, tensors: dict[str, torch.Tensor], steps: int) -> dict[str, torch.Tensor]:
    """The recorded lowering's BoundProgram (after its prologue) on ``tensors``; a step program runs ``steps``
    times, feeding next_frame back (position and caches advance in place)."""
    from fx2ttnn.runtime.generate import upload
    variant = tts.variant(name, tts.default_key(name))
    ttnn, device = tts.backend.ttnn, tts.backend.device
    specs = dict(variant.lowered.input_specs)
    if variant.lowered.prologue is not None:
        specs.update(variant.lowered.prologue.input_specs)
    env = {n: upload(ttnn, device, specs[n], v) if specs[n].is_ttnn else v for n, v in tensors.items()}
    if variant.prologue is not None:
        env.update(zip(variant.prologue.output_names, variant.prologue(*[env[n] for n in variant.prologue.input_names])))
    for _ in range(steps):
        outs = dict(zip(variant.lowered.signature.outputs, variant.bound(*[env[n] for n in variant.bound.input_names])))
        if "next_frame" in outs:
            env["frame"] = outs["next_frame"]
    outs.update((n, env[n]) for n in variant.lowered.signature.mutated_inputs)
    return {n: v if isinstance(v, torch.Tensor) else ttnn.to_torch(v) for n, v in outs.items()}


def _exported(module, tensors: dict[str, torch.Tensor], steps: int) -> dict[str, torch.Tensor]:
    device = module.ttnn.open_device(device_id=0, l1_small_size=module.L1_SMALL_SIZE,
                                     trace_region_size=module.TRACE_REGION_SIZE)
    params = module.load_parameters(module.WEIGHTS, device)
    inputs = module.upload_inputs(device, tensors)
    if module.PROLOGUE_OUTPUTS:
        hoisted = module.prologue(device, params, *(inputs[n] for n in module.PROLOGUE_INPUTS))
        inputs.update(zip(module.PROLOGUE_OUTPUTS, hoisted))
    for _ in range(steps):
        outs = dict(zip(module.OUTPUTS, module.run(device, params, *(inputs[n] for n in module.INPUTS))))
        if "next_frame" in outs:
            inputs["frame"] = outs["next_frame"]
    outs.update((n, inputs[n]) for n in module.WRITTEN_IN_PLACE)
    results = {n: module.to_host(v) for n, v in outs.items()}
    module.ttnn.close_device(device)
    return results


@pytest.mark.parametrize("name", EXPORTED)
def test_exported_script_matches_in_process_runtime(exported, name, monkeypatch):
    """The script on the reference ttnn vs the in-process BoundProgram, same inputs: every output and every
    input written in place (KV caches, position), PCC >= 0.9999 in float32; decoder_step runs two steps."""
    from safetensors.torch import load_file

    from fx2ttnn.runtime import reference
    *_, out, lowered = exported
    module = load_script(out / f"{name}.py", monkeypatch)
    assert module.ttnn is reference
    tensors = load_file(str(out / f"{name}_inputs.safetensors"))
    steps = 2 if name == "decoder_step" else 1
    want = _in_process(lowered[name], name, tensors, steps)
    got = _exported(module, tensors, steps)
    assert set(got) == set(want)
    for n in want:
        assert got[n].shape == want[n].shape, n
        assert torch.isfinite(got[n].float()).all(), n
        assert pcc(got[n], want[n]) >= PCC, (n, pcc(got[n], want[n]))
    if name == "decoder_step":
        position = int(tensors["position"][0])
        assert got["position"].tolist() == [position + 2]
        for i in range(tiny_config().decoder_layers):  # both steps wrote their rows of every self-attention cache
            for kind in ("self_k", "self_v"):
                written = got[f"{kind}_{i}"][:, :, position:position + 2].float()
                assert not torch.equal(written, tensors[f"{kind}_{i}"][:, :, position:position + 2].float())
                assert torch.equal(got[f"{kind}_{i}"][:, :, position + 2:], tensors[f"{kind}_{i}"][:, :, position + 2:])
    else:  # the expected file is the in-process run on the example inputs
        expected = load_file(str(out / f"{name}_expected.safetensors"))
        for n in want:
            assert pcc(expected[n], want[n]) >= PCC, n


def test_script_main_on_reference(exported, tmp_path):
    """``FX2TTNN_TTNN=reference python decoder_step.py --check`` from another directory."""
    *_, out, _ = exported
    proc = subprocess.run([sys.executable, str(out / "decoder_step.py"), "--check", "--pcc", str(PCC)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "FX2TTNN_TTNN": "reference"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "on fx2ttnn.runtime.reference" in proc.stdout and proc.stdout.rstrip().endswith("check passed")
    assert "  spectrum: [1, 1, 160] float32" in proc.stdout
    assert "  self_k_0: [1, 2, 32, 32] float32 (written in place)" in proc.stdout
    assert "check self_v_1: PCC 1.000000 ok" in proc.stdout


def test_script_main_reference_flag(exported, monkeypatch, capsys):
    """``encoder.py --reference --check`` where the default (real ttnn) is not importable."""
    *_, out, _ = exported
    module = load_script(out / "encoder.py", monkeypatch)
    monkeypatch.setenv("FX2TTNN_TTNN", "ttnn")
    monkeypatch.setitem(sys.modules, "ttnn", None)  # as if the ttnn package were not installed
    assert module.main(["--reference", "--check", "--pcc", str(PCC)]) == 0
    stdout = capsys.readouterr().out
    assert "  encoder_hidden_states: [1, 32, 64] float32" in stdout and stdout.rstrip().endswith("check passed")


def test_script_check_fails_on_wrong_expected(exported, tmp_path, monkeypatch, capsys):
    from safetensors.torch import load_file, save_file
    *_, out, _ = exported
    expected = load_file(str(out / "encoder_expected.safetensors"))
    expected["encoder_hidden_states"] = torch.randn_like(expected["encoder_hidden_states"])
    save_file(expected, str(tmp_path / "wrong.safetensors"))
    module = load_script(out / "encoder.py", monkeypatch)
    assert module.main(["--check", str(tmp_path / "wrong.safetensors")]) == 1
    assert "check encoder_hidden_states: PCC" in capsys.readouterr().out
    mask = torch.tensor([0.0, 0.0, -float("inf")])  # a bfloat16 attention mask: -inf where masked
    assert module.pcc(mask, mask.clone()) == 1.0 and module.pcc(mask, torch.zeros(3)) == 0.0
    assert module.pcc(torch.arange(4.0), torch.arange(4.0) * 2 + 1) == pytest.approx(1.0)


def test_script_ttnn_selection_errors(exported, monkeypatch, capsys):
    """Without the real ttnn the default is a clear error naming the reference switch; neither importable:
    both reasons; main() turns it into one ``error:`` line and exit code 2."""
    *_, out, _ = exported
    module = load_script(out / "encoder.py", monkeypatch)
    monkeypatch.setitem(sys.modules, "ttnn", None)  # as if the ttnn package were not installed
    with pytest.raises(ImportError, match="FX2TTNN_TTNN=reference"):
        module.use_ttnn("ttnn")
    with pytest.raises(ImportError, match="must be ttnn, reference or auto"):
        module.use_ttnn("gpu")
    from fx2ttnn.runtime import reference
    assert module.use_ttnn("auto") is reference and module.ttnn is reference
    monkeypatch.setitem(sys.modules, "fx2ttnn.runtime", None)  # and fx2ttnn neither
    with pytest.raises(ImportError, match="ttnn package is not importable.*reference implementation is not importable"):
        module.use_ttnn("auto")
    monkeypatch.setenv("FX2TTNN_TTNN", "reference")
    assert module.main([]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "fx2ttnn" in err


# -- CLI errors: one `error:` line on stderr, exit code 2, nothing written ------------------------------
def _error_cases(ckpt: Path, tmp: Path) -> dict[str, list[str]]:
    (tmp / "a_file").write_text("x")
    model = ["--model", str(ckpt / "model")]
    out = str(tmp / "out")
    return {
        "unknown program": ["export", "--out", out, *model, "--program", "decoder"],
        "unknown program in a list": ["export", "--out", out, *model, "--program", "encoder,postnet,everything"],
        "out is a file": ["export", "--out", str(tmp / "a_file"), *model],
        "out parent is a file": ["export", "--out", str(tmp / "a_file" / "out"), *model],
        "missing model dir": ["export", "--out", out, "--model", str(tmp / "nope")],
        "vocoder given as model": ["export", "--out", out, "--model", str(ckpt / "vocoder")],
        "bad max steps": ["export", "--out", out, *model, "--max-steps", "48"],
        "invalid dtype": ["export", "--out", out, *model, "--dtype", "float16"],
        "out missing": ["export", *model],
    }


ERROR_IDS = ["unknown program", "unknown program in a list", "out is a file", "out parent is a file",
             "missing model dir", "vocoder given as model", "bad max steps", "invalid dtype", "out missing"]


@pytest.mark.parametrize("case", ERROR_IDS)
def test_errors(case, checkpoint, tmp_path):
    rc, out, err = run_main(_error_cases(checkpoint, tmp_path)[case])
    assert rc == 2, (case, out, err)
    assert out == "" and "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    if case in ("invalid dtype", "out missing"):  # argparse's own usage error
        return
    assert errors[0].startswith("error: ") and err.rstrip().splitlines()[-1] == errors[0]
    if case.startswith("unknown program"):
        assert "programs are encoder, decoder_step, postnet, vocoder or all" in errors[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_error_unwritable_dir(checkpoint, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        rc, out, err = run_main(["export", "--out", str(locked / "out"), "--model", str(checkpoint / "model")])
    finally:
        locked.chmod(0o700)
    assert rc == 2 and out == "" and err.startswith("error: ") and "not writable" in err


def test_parse_programs():
    assert export_tool.parse_programs(None) == ["encoder", "decoder_step", "postnet", "vocoder"]
    assert export_tool.parse_programs(["vocoder,encoder", "encoder"]) == ["encoder", "vocoder"]
    assert export_tool.parse_programs(["all"]) == ["encoder", "decoder_step", "postnet", "vocoder"]


def test_wrap_call_fits_and_nests():
    args = ["input_tensor=x", "weight_tensor=p[\"layers.0.conv.weight\"]", "device=device",
            "conv_config=ttnn.Conv2dConfig(activation=ttnn.UnaryWithParam(ttnn.UnaryOpType.LEAKY_RELU, 0.1), "
            "output_layout=ttnn.TILE_LAYOUT, weights_dtype=ttnn.bfloat16, deallocate_activation=False)"]
    lines = export_tool._wrap_call("    y = ", "ttnn.conv2d", args)
    assert all(len(line) <= export_tool.LINE_WIDTH for line in lines)
    text = "\n".join(lines)
    compile(textwrap.dedent(text), "<wrapped>", "exec")
    assert "".join(text.split()) == "".join(f"y=ttnn.conv2d({','.join(args)})".split())


def test_help_returns_zero():
    rc, out, _ = run_main(["export", "--help"])
    assert rc == 0 and "--program" in out


def test_host_fallback_and_host_constant_as_torch_calls(tmp_path, monkeypatch):
    """A (synthetic) program with a host fallback reading a host constant: plain torch calls with a comment."""
    from safetensors.torch import save_file

    from fx2ttnn.lowering.ir import DEVICE, HostOp, ProgramSignature, Ref, TensorSpec, TTNNOp
    from fx2ttnn.lowering.pipeline import LoweredProgram

    root = torch.nn.Module()
    root.c_scale = torch.tensor([1.0, -2.0, 0.5, 3.0])
    g = torch.fx.Graph()
    x = g.placeholder("x")
    x.meta["tensor_spec"] = TensorSpec((2, 4), "torch.float32")
    scale = g.get_attr("c_scale")
    cumsum = g.call_function(HostOp(torch.ops.aten.cumsum.default), (x, 1))
    cumsum.meta["fallback_reason"] = "no ttnn cumsum"
    scaled = g.call_function(HostOp(torch.ops.aten.mul.Tensor), (cumsum, scale))
    up = g.call_function(TTNNOp("from_torch"), (scaled,), {"dtype": Ref("float32"), "layout": Ref("TILE_LAYOUT"),
                                                            "device": DEVICE})
    y = g.call_function(TTNNOp("relu"), (up,))
    g.output((y,))
    gm = torch.fx.GraphModule(root, g)
    lowered = LoweredProgram("toy", gm, ProgramSignature(["x"], ["y"]), {"x": x.meta["tensor_spec"]},
                             [TensorSpec((2, 4), "float32", "TILE", "DRAM", True)])
    writer = export_tool.ScriptWriter(lowered, program="toy", key=(1,), dtype="float32", max_steps=32, source="test")
    code = writer.render()
    assert "    # host fallback (aten.cumsum.default): no ttnn cumsum\n    cumsum = torch.ops.aten.cumsum.default(x, 1)" \
        in code
    assert 'torch.ops.aten.mul.Tensor(cumsum, p["' in code and writer.host_calls == 2
    (tmp_path / "toy.py").write_text(code)
    save_file(writer.weights, str(tmp_path / "toy.safetensors"))
    module = load_script(tmp_path / "toy.py", monkeypatch)
    value = torch.randn(2, 4)
    device = module.ttnn.open_device(device_id=0)
    (out,) = module.run(device, module.load_parameters(module.WEIGHTS, device), value)
    assert torch.allclose(module.ttnn.to_torch(out), torch.relu(value.cumsum(1) * root.c_scale))


def test_freeing_dead_values_keeps_results(exported, tmp_path, monkeypatch):
    """With every dead intermediate dropped (``del``; by default only those >= 1 MiB), decoder_step (in-place
    cache aliases, unpacked q/k/v) still matches the in-process runtime."""
    from safetensors.torch import load_file, save_file
    *_, out, lowered = exported
    tts = lowered["decoder_step"]
    variant = tts.variant("decoder_step", tts.default_key("decoder_step"))
    monkeypatch.setattr(export_tool, "FREE_BYTES", 0)
    writer = export_tool.ScriptWriter(variant.lowered, program="decoder_step", key=variant.key, dtype="float32",
                                      max_steps=tts.max_steps, source="test")
    code = writer.render()
    assert "\n    del layers_0_self_attn_qkv\n" in code
    (tmp_path / "decoder_step.py").write_text(code)
    save_file(writer.weights, str(tmp_path / "decoder_step.safetensors"))
    module = load_script(tmp_path / "decoder_step.py", monkeypatch)
    tensors = load_file(str(out / "decoder_step_inputs.safetensors"))
    got, want = _exported(module, tensors, 2), _in_process(tts, "decoder_step", tensors, 2)
    for n in want:
        assert pcc(got[n], want[n]) >= PCC, n
