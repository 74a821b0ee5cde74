"""assign_compute_configs: every op that takes a compute kernel config gets an explicit one from the policy table."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.lowering.ir import DEVICE_ARCH, Construct, Ref, TTNNOp
from fx2ttnn.passes.assign_compute_configs import AssignComputeConfigs, config_construct
from fx2ttnn.passes.lower_layer_norm import LowerLayerNorm
from fx2ttnn.passes.lower_linear import LowerLinear
from fx2ttnn.precision import LARGE_LINEAR_ELEMENTS, POLICIES, OpPrecision

from .helpers import capture_module, count_ops, finish, nodes_of, run_pass, run_passes, run_program


class Block(nn.Module):
    """A large linear (768 x 768 weight) + gelu, a layer norm, a small linear, an add (no compute config)."""

    def __init__(self):
        super().__init__()
        self.big = nn.Linear(768, 768)
        self.norm = nn.LayerNorm(768)
        self.small = nn.Linear(768, 32)

    def forward(self, x):
        h = self.norm(nn.functional.gelu(self.big(x)))
        return self.small(h) + 1.0


def lowered(dtype: str = "bfloat16"):
    torch.manual_seed(0)
    m, x = Block().eval(), torch.randn(1, 32, 768)
    gm = run_passes(capture_module(m, x), LowerLinear(), LowerLayerNorm())
    return m, x, finish(gm, [x], dtype)


def config_of(node) -> dict:
    c = node.kwargs["compute_kernel_config"]
    assert isinstance(c, Construct) and c.path == "init_device_compute_kernel_config" and c.args == (DEVICE_ARCH,)
    return dict(c.kwargs)


@pytest.mark.parametrize("policy", ["accuracy", "performance"])
def test_every_config_op_gets_its_class_entry(policy):
    m, x, gm = lowered()
    res = run_pass(gm, AssignComputeConfigs(policy))
    big, small = nodes_of(gm, ops.linear)
    (norm,) = nodes_of(gm, ops.layer_norm)
    table = POLICIES[policy]
    for node, cls in ((big, "linear.large"), (small, "linear.small"), (norm, "layer_norm")):
        p = table[cls]
        assert node.meta["precision"] == (cls, p)
        assert config_of(node) == {"math_fidelity": Ref(f"MathFidelity.{p.math_fidelity}"),
                                   "math_approx_mode": p.math_approx_mode, "fp32_dest_acc_en": p.fp32_dest_acc_en,
                                   "packer_l1_acc": p.packer_l1_acc}
    assert all("compute_kernel_config" not in n.kwargs for n in nodes_of(gm, ops.add))  # takes none
    weight = big.args[1]
    assert weight.target is ops.from_torch and weight.meta["tensor_spec"].dtype == (table["linear.large"].weights_dtype
                                                                                   or "bfloat16")
    assert small.args[1].meta["tensor_spec"].dtype == "bfloat16"
    assert res.stats["configs"] == 3 and res.stats.get("weights_bfloat8_b", 0) == (policy == "performance")
    # the program runs and stays close to eager (bfloat8_b weights: the looser of the two)
    with torch.no_grad():
        want = m(x)
    got = run_program(gm, [x])[0].float()
    assert torch.nn.functional.cosine_similarity(want.flatten(), got.flatten(), 0) > 0.999


def test_ttnn_defaults_spell_out_each_ops_default():
    _, _, gm = lowered()
    run_pass(gm, AssignComputeConfigs("ttnn-defaults"))
    big, small = nodes_of(gm, ops.linear)
    (norm,) = nodes_of(gm, ops.layer_norm)
    # linear: HiFi2, 16-bit DST, packer L1 acc; layer_norm: HiFi4 with approximate SFPU modes
    assert config_of(big) == config_of(small) == {"math_fidelity": Ref("MathFidelity.HiFi2"), "math_approx_mode": False,
                                                  "fp32_dest_acc_en": False, "packer_l1_acc": True}
    assert config_of(norm) == {"math_fidelity": Ref("MathFidelity.HiFi4"), "math_approx_mode": True,
                               "fp32_dest_acc_en": False, "packer_l1_acc": False}


def test_float32_outputs_get_a_32_bit_dest():
    _, _, gm = lowered("float32")
    res = run_pass(gm, AssignComputeConfigs("performance"))  # performance gives small linears a 16-bit DST
    (_, small) = nodes_of(gm, ops.linear)
    assert config_of(small)["fp32_dest_acc_en"] is True
    assert res.stats["fp32_dest_for_float32_output"] >= 2  # the small linear and the layer norm


def test_a_given_config_is_kept_and_a_shared_weight_upload_is_copied():
    _, _, gm = lowered()
    big, small = nodes_of(gm, ops.linear)
    mine = config_construct(OpPrecision("LoFi", False, False, False))
    small.kwargs = {**small.kwargs, "compute_kernel_config": mine}
    # a second reader of the large linear's weight upload (not a linear): its upload must stay bfloat16
    upload = big.args[1]
    with gm.graph.inserting_after(big):
        extra = gm.graph.call_function(ops.add, (upload, upload))
    extra.meta.update(upload.meta)
    out = next(n for n in gm.graph.nodes if n.op == "output")
    out.args = ((*out.args[0], extra),)
    gm.recompile()
    res = run_pass(gm, AssignComputeConfigs("performance"))
    assert small.kwargs["compute_kernel_config"] is mine and "precision" not in small.meta
    assert big.args[1] is not upload and big.args[1].meta["tensor_spec"].dtype == "bfloat8_b"
    assert upload.meta["tensor_spec"].dtype == "bfloat16" and count_ops(gm)[ops.from_torch] >= 2
    assert res.stats["weights_bfloat8_b"] == 1


def test_unknown_policy_is_an_error():
    from fx2ttnn.errors import UnsupportedModelError
    with pytest.raises(UnsupportedModelError, match="precision must be one of accuracy, performance, ttnn-defaults"):
        AssignComputeConfigs("fast")


def test_large_linear_threshold_is_the_decode_steps_big_weights():
    assert 768 * 768 >= LARGE_LINEAR_ELEMENTS > 768 * 160  # attention/FFN weights large, the mel head small


def test_every_config_taking_op_of_every_program_carries_one(tiny_models):
    """All four tiny programs (and the step's prologue) under each policy: no op that takes a compute kernel
    config is emitted without one, in the bound graphs and in the exported scripts."""
    from fx2ttnn import lower_model
    from fx2ttnn.tools.export import ScriptWriter

    model, vocoder = tiny_models
    for policy in POLICIES:
        tts = lower_model(model, vocoder=vocoder, backend="reference", precision=policy, keep_host_weights=True)
        for v in tts.variants:
            graphs = [v.lowered] + ([v.lowered.prologue] if v.lowered.prologue is not None else [])
            expected = 0
            for lp in graphs:
                for n in lp.nodes():
                    rule = ops.rule_for(n.target) if isinstance(n.target, TTNNOp) else None
                    if rule is not None and rule.compute_config:
                        assert n.kwargs.get(rule.compute_config) is not None, (policy, v.name, n.name)
                        expected += 1
            assert expected
            script = ScriptWriter(v.lowered, program=v.name, key=v.key, dtype=tts.dtype, max_steps=tts.max_steps,
                                  source="test", precision=policy).render()
            calls = script.count('compute_kernel_config=p["compute_config.') + script.count(
                'compute_config=p["compute_config.')
            assert calls == expected, (policy, v.name)
            assert "ttnn.init_device_compute_kernel_config(" in script.split("def run(")[0]  # made in load_parameters
