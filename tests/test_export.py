"""ONNX export round trip on real images."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from handpose import HandposeError, Predictor, load_model
from handpose.cli import app
from handpose.data.image import read_image
from tests.conftest import REPO

pytest.importorskip("onnxruntime")
EXAMPLES = sorted((REPO / "examples" / "hands").glob("*.jpg"))


def test_export_round_trip_on_real_images(tmp_path):
    out = tmp_path / "m.onnx"
    r = CliRunner().invoke(app, ["export", str(out)])
    assert r.exit_code == 0, r.output
    diff = float(r.output.split(":")[-1])
    assert diff < 1e-4
    onnx_bundle = load_model(out)
    torch_bundle = load_model()
    assert onnx_bundle.skeleton == torch_bundle.skeleton and onnx_bundle.mean == torch_bundle.mean
    images = [read_image(p) for p in EXAMPLES]
    a = Predictor(torch_bundle).predict_arrays(images)
    b = Predictor(onnx_bundle, batch_size=3).predict_arrays(images)  # dynamic batch: 3 then 1
    for x, y in zip(a, b, strict=True):
        # heatmaps agree to ~1e-6; keypoints within 0.01 px (a tie between two heatmap cells could differ more)
        assert np.abs(x.keypoints - y.keypoints).max() < 0.01
        assert np.abs(x.scores - y.scores).max() < 1e-4


def test_predict_runtime_onnx_gives_the_same_json(tmp_path):
    outs = {}
    for runtime in ("torch", "onnx"):
        outs[runtime] = tmp_path / f"{runtime}.json"
        r = CliRunner().invoke(app, ["predict", str(EXAMPLES[0]), "--runtime", runtime, "--json", str(outs[runtime]),
                                     "-q"])
        assert r.exit_code == 0, r.output
    a, b = (json.loads(p.read_text())[0] for p in outs.values())
    assert a["file_name"] == b["file_name"]
    assert np.abs(np.array(a["keypoints"]) - np.array(b["keypoints"])).max() < 0.01


def test_bad_onnx_files(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_text("not onnx")
    with pytest.raises(HandposeError, match="junk.onnx: not a loadable ONNX model"):
        load_model(junk)
    import onnx
    import torch

    plain = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 2, 1), (torch.zeros(1, 3, 8, 8),), str(plain), dynamo=False)
    onnx.checker.check_model(str(plain))
    with pytest.raises(HandposeError, match="lacks the handpose preprocessing metadata"):
        load_model(plain)


def test_int8_quantisation_stays_close(tmp_path):
    out, q8 = tmp_path / "m.onnx", tmp_path / "m8.onnx"
    r = CliRunner().invoke(app, ["export", str(out), "--int8", str(q8), "--calibration", str(EXAMPLES[0].parent)])
    assert r.exit_code == 0, r.output
    images = [read_image(p) for p in EXAMPLES]
    a = Predictor(load_model(out)).predict_arrays(images)
    b = Predictor(load_model(q8)).predict_arrays(images)
    gaps = [np.median(np.linalg.norm(x.keypoints - y.keypoints, axis=-1)) for x, y in zip(a, b, strict=True)]
    # px of the 256x256 photos, median per photo: int8 moves keypoints (measured with the bundled model and these
    # 4 calibration photos: 1.7 to 10 px); the val-split error change is in docs/benchmarks.md (12.76 -> 13.47)
    assert np.mean(gaps) < 8.0 and max(gaps) < 20.0
    assert q8.stat().st_size < 0.5 * out.stat().st_size
    r = CliRunner().invoke(app, ["export", str(out), "--int8", str(q8)])
    assert r.exit_code == 2 and "calibration" in r.output


def test_bottom_up_export_round_trip(tmp_path):
    import torch

    from handpose import HAND21
    from handpose.bundle import ModelBundle
    from handpose.codecs.paf import PafCodec
    from handpose.export import OnnxNetwork, export_onnx
    from handpose.models import create_model

    torch.manual_seed(0)
    net = create_model("lightweight_openpose", 21, (128, 128), num_limbs=len(HAND21.limbs)).eval()
    bundle = ModelBundle(net, HAND21, PafCodec(HAND21, (128, 128), stride=8, sigma=1.0), [0.45, 0.4, 0.38],
                         [0.2, 0.17, 0.17], "lightweight_openpose")
    out = tmp_path / "lo.onnx"
    assert export_onnx(bundle, out) < 1e-4
    onnx_bundle = load_model(out)
    assert onnx_bundle.codec.kind == "paf" and onnx_bundle.skeleton == HAND21
    predictor = Predictor(bundle)
    batch = torch.stack([predictor.prepare(read_image(p)).tensor for p in EXAMPLES[:3]])
    (h_ref, p_ref), (h_onnx, p_onnx) = net(batch)[-1], OnnxNetwork(out)(batch)[-1]
    assert h_onnx.shape == (3, 22, 16, 16) and p_onnx.shape == (3, 2 * len(HAND21.limbs), 16, 16)
    assert (h_onnx - h_ref).abs().max() < 1e-4 and (p_onnx - p_ref).abs().max() < 1e-4
    a = predictor.predict_arrays([read_image(p) for p in EXAMPLES])
    b = Predictor(onnx_bundle).predict_arrays([read_image(p) for p in EXAMPLES])
    assert [len(r.keypoints) for r in a] == [len(r.keypoints) for r in b]


def test_onnx_predictor_runs_torch_glue_on_one_thread_and_restores(tmp_path, monkeypatch):
    import torch

    from handpose.export import export_onnx

    export_onnx(load_model(), tmp_path / "m.onnx")
    predictor = Predictor(load_model(tmp_path / "m.onnx"))
    seen = []

    class Spy:  # the real codec, noting torch's thread count when decoding
        def __init__(self, codec):
            self.codec = codec

        def __getattr__(self, name):
            return getattr(self.codec, name)

        def decode(self, *args):
            seen.append(torch.get_num_threads())
            return self.codec.decode(*args)

    monkeypatch.setattr(predictor.bundle, "codec", Spy(predictor.bundle.codec))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        predictor.predict_arrays([read_image(EXAMPLES[0])])
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_same_padding_is_folded_into_the_convolutions(tmp_path):
    """MediaPipe's networks pad their strided convolutions asymmetrically (TensorFlow SAME): the exported graph has
    no Pad node left, the convolutions carry the padding, and the outputs on real photos stay the PyTorch ones."""
    import onnx

    from handpose.export import export_onnx, fold_pads_into_convs

    out = tmp_path / "default.onnx"
    assert export_onnx(load_model(), out) < 1e-4  # the check against PyTorch runs on the folded file
    graph = onnx.load(str(out)).graph
    ops = [n.op_type for n in graph.node]
    assert "Pad" not in ops and "Shape" not in ops and ops.count("Conv") > 40
    asymmetric = [list(a.ints) for n in graph.node if n.op_type == "Conv" for a in n.attribute
                  if a.name == "pads" and list(a.ints[:2]) != list(a.ints[2:])]
    # stride 2 on even sizes: an odd total, TensorFlow's extra pixel after (3x3: 0 / 1, 5x5: 1 / 2)
    assert asymmetric and all(p[0] == p[1] and p[2] == p[3] == p[0] + 1 for p in asymmetric)
    assert [o.domain for o in onnx.load(str(out)).opset_import] == [""]  # standard operators only
    onnx.checker.check_model(str(out), full_check=True)
    assert fold_pads_into_convs(out) == 0  # nothing left to move
    images = [read_image(p) for p in EXAMPLES]
    a = Predictor(load_model()).predict_arrays(images)
    b = Predictor(load_model(out)).predict_arrays(images)
    for x, y in zip(a, b, strict=True):
        assert np.abs(x.keypoints - y.keypoints).max() < 0.01
