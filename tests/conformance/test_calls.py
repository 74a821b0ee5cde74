"""The call list the real-ttnn replay receives is the executor's, every argument serialized as data (no side env)."""
from __future__ import annotations

import json

import pytest

from fx2ttnn import lower_model
from fx2ttnn.conformance.calls import Blob, call_key, program_calls
from fx2ttnn.lowering.ir import TTNNOp, split_bind_time


@pytest.fixture(scope="module")
def lowered(tiny_models):
    model, vocoder = tiny_models
    return lower_model(model, vocoder=vocoder, backend="reference", dtype="bfloat16", keep_host_weights=True)


def test_calls_are_the_bound_programs_calls(lowered):
    for name, variant in ((n, lowered.variant(n, lowered.default_key(n))) for n in lowered.program_names):
        calls, host = program_calls(variant.lowered, name, Blob())
        parts = [variant.lowered.graph_module] + ([variant.lowered.prologue.graph_module]
                                                  if variant.lowered.prologue is not None else [])
        expected = []
        for gm in parts[::-1]:  # the prologue's calls come first
            bind, per_call = split_bind_time(gm.graph)
            expected += [(n.name, "bind") for n in bind if isinstance(n.target, TTNNOp)]
            expected += [(n.name, "call") for n in per_call if isinstance(n.target, TTNNOp)]
        for when in ("bind", "call"):  # serialized in graph order; each kind in the executor's order
            assert [c["node"] for c in calls if c["when"] == when] == [n for n, w in expected if w == when]
        # what the executor counts per call is what the replay sees as per-call ttnn ops
        bound = variant.bound
        assert sum(c["when"] == "call" and c["part"] == "program" for c in calls) == \
            bound.counts.ttnn_ops + bound.counts.transfers + bound.counts.deallocations
        assert not host


def test_arguments_are_plain_data(lowered):
    blob = Blob()
    calls, _ = program_calls(lowered.programs["decoder_step"], "decoder_step", blob)
    json.dumps(calls)  # no objects: JSON and raw buffers only
    ops = {c["op"] for c in calls}
    assert {"plus_one", "transformer.scaled_dot_product_attention_decode", "experimental.paged_update_cache"} <= ops
    (inc,) = [c for c in calls if c["op"] == "plus_one"]
    assert inc["args"] == [{"t": "tensor", "shape": [1], "dtype": "int32", "layout": "ROW_MAJOR", "on_device": True,
                            "memory": {"memory_layout": "INTERLEAVED", "buffer_type": "DRAM", "shard_spec": None}}]
    uploads = [c for c in calls if c["op"] == "from_torch" and c["when"] == "bind"]
    assert uploads and all(c["takes_device"] for c in uploads if c["kwargs"].get("device"))
    assert all(c["args"][0]["t"] == "host" for c in uploads)
    assert blob.size > 0  # small constants travel with their values
    sharded = [c for c in calls if any(isinstance(v, dict) and v.get("t") == "construct"
                                       and v["path"] == "create_sharded_memory_config" for v in c["kwargs"].values())]
    for c in sharded:  # configs travel as the construct the program makes, for the real ttnn to build
        mc = c["kwargs"]["memory_config"]
        assert mc["kwargs"]["core_grid"]["path"] == "CoreGrid" and mc["kwargs"]["strategy"]["t"] == "ref"


def test_equal_calls_share_a_key(lowered):
    calls, _ = program_calls(lowered.programs["decoder_step"], "decoder_step", Blob())
    keys = {call_key(c) for c in calls}
    assert len(keys) < len(calls)  # the decoder layers repeat their calls
