"""Lightweight OpenPose imported from the OpenVINO IR (Open Model Zoo ``human-pose-estimation-0001``, FP16-INT8).

Against OpenVINO's own runtime on real coco-person-mini photos (each resized to the IR's 456x256 input). OpenVINO
runs the int8 network: 63 FakeQuantize operators round the activations to 8 bits, PyTorch computes in float32.
Measured here on all 26 val2017 photos (heatmaps ``(19, 32, 57)``, PAFs ``(38, 32, 57)``): largest absolute
difference 0.21 (heatmaps, values in [0, 1]) and 0.24 (PAFs, in [-1, 1]); mean absolute difference at most 0.0024 and
0.0018; correlation of the flattened outputs at least 0.9995 (heatmaps) and 0.953 (PAFs; the lowest on a photo
with weak fields, where the rounding noise is a larger share). With the activation FakeQuantize operators removed
from the IR (the float network it describes), OpenVINO and PyTorch agree within 3.4e-6: the mapping itself is exact.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from handpose import HandposeError
from handpose.bundle import ModelBundle
from handpose.codecs import PafCodec
from handpose.data.coco import read_coco_json
from handpose.importers import read_graph
from handpose.models.openpose import LightweightOpenPose, import_lightweight_openpose
from handpose.predict import Predictor
from handpose.skeleton import COCO17, COCO18, keypoint_index_map

REPO = Path(__file__).resolve().parents[1]
XML = REPO.parent / "shared" / "weights" / "human-pose-estimation-0001.xml"
PEOPLE = REPO.parent / "shared" / "data" / "coco-person-mini"
PHOTOS = ("000000000139.jpg", "000000183709.jpg")
IR_SIZE = (456, 256)  # the IR's static input, width x height


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="module")
def graph():
    _need(XML)
    _need(PEOPLE)
    return read_graph(XML)


@pytest.fixture(scope="module")
def imported(graph):
    model = LightweightOpenPose(COCO18.num_keypoints, len(COCO18.limbs)).eval()
    mean, std = import_lightweight_openpose(model, graph)
    return model, mean, std


def _photo_bgr(name: str) -> np.ndarray:
    return cv2.resize(cv2.imread(str(PEOPLE / "val2017" / name)), IR_SIZE, interpolation=cv2.INTER_AREA)


def _torch_outputs(model, mean, std, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = (bgr[:, :, ::-1] / 255.0 - np.asarray(mean)) / np.asarray(std)  # RGB, the bundle's normalisation
    with torch.no_grad():
        heatmaps, pafs = model(torch.from_numpy(x.transpose(2, 0, 1)[None].copy()).float())[-1]
    return heatmaps[0].numpy(), pafs[0].numpy()


def _openvino_outputs(compiled, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The runtime's heatmaps and PAFs, the PAF channels in COCO18's limb order (as the import orders them)."""
    from handpose.models.openpose import OPENPOSE_PAF_CHANNELS

    out = compiled(bgr.transpose(2, 0, 1)[None].astype(np.float32))
    order = [c for pair in OPENPOSE_PAF_CHANNELS for c in pair]
    return out["Mconv7_stage2_L2"][0], out["Mconv7_stage2_L1"][0][order]


def test_normalisation_is_the_irs_own_input_scaling(imported):
    _, mean, std = imported
    # the IR multiplies 0-255 BGR by float16(1/255) = 0.0039196 and adds float16(-0.502)
    np.testing.assert_allclose(mean, [0.50196] * 3, atol=1e-4)
    np.testing.assert_allclose(std, [1.0] * 3, atol=1e-4)


def test_outputs_match_openvino_runtime_on_real_photos(imported):
    import openvino as ov

    model, mean, std = imported
    compiled = ov.Core().compile_model(str(XML), "CPU")
    for name in PHOTOS:
        bgr = _photo_bgr(name)
        for ours, theirs, what in zip(_torch_outputs(model, mean, std, bgr), _openvino_outputs(compiled, bgr),
                                      ("heatmaps", "pafs"), strict=True):
            assert ours.shape == theirs.shape == ((19,) if what == "heatmaps" else (38,)) + (32, 57)
            diff = np.abs(ours - theirs)
            corr = np.corrcoef(ours.ravel(), theirs.ravel())[0, 1]
            assert diff.max() < 0.3, (name, what, diff.max())
            assert diff.mean() < 0.005, (name, what, diff.mean())
            assert corr > (0.999 if what == "heatmaps" else 0.95), (name, what, corr)


def test_outputs_match_the_float_network_of_the_ir_exactly(imported):
    """Without the activation FakeQuantize operators OpenVINO runs the float network the IR describes."""
    import openvino as ov

    model, mean, std = imported
    core = ov.Core()
    ir = core.read_model(str(XML))
    for node in ir.get_ordered_ops():
        src = node.input_value(0).get_node() if node.get_input_size() else None
        weights_fq = src is not None and src.get_type_name() == "Constant"
        if node.get_type_name() == "FakeQuantize" and not weights_fq:
            node.output(0).replace(node.input_value(0))
    compiled = core.compile_model(ir, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    bgr = _photo_bgr(PHOTOS[1])
    for ours, theirs in zip(_torch_outputs(model, mean, std, bgr), _openvino_outputs(compiled, bgr), strict=True):
        assert np.abs(ours - theirs).max() < 1e-4


def _state(model: torch.nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model: torch.nn.Module, before: dict) -> bool:
    return all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize(("kwargs", "layer"), [
    ({"num_keypoints": 18, "num_limbs": 19, "refinement_stages": 2}, "convolution layers"),
    ({"num_keypoints": 17, "num_limbs": 19}, "conv5_5_CPM_L2"),
    ({"num_keypoints": 18, "num_limbs": 19, "cpm": "pytorch"}, "convolution layers"),
])
def test_mismatched_network_is_named_and_left_unchanged(graph, kwargs, layer):
    model = LightweightOpenPose(**kwargs)
    before = _state(model)
    with pytest.raises(HandposeError, match=layer) as err:
        import_lightweight_openpose(model, graph)
    assert str(XML) in str(err.value)
    assert _unchanged(model, before)


def test_truncated_bin_and_broken_xml_are_named(tmp_path):
    _need(XML)
    shutil.copy(XML, tmp_path / "cut.xml")
    data = XML.with_suffix(".bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(HandposeError, match=r"cut\.bin.*constant layer '.+'.*truncated"):
        read_graph(tmp_path / "cut.xml")
    (tmp_path / "broken.xml").write_bytes(XML.read_bytes()[:50_000])
    shutil.copy(XML.with_suffix(".bin"), tmp_path / "broken.bin")
    with pytest.raises(HandposeError, match=r"broken\.xml"):
        read_graph(tmp_path / "broken.xml")
    shutil.copy(XML, tmp_path / "alone.xml")
    with pytest.raises(HandposeError, match=r"alone\.bin.*missing"):
        read_graph(tmp_path / "alone.xml")


def _people(name: str) -> tuple[np.ndarray, np.ndarray]:
    """COCO17 labels of one val photo mapped to COCO18 (the neck: the shoulders' midpoint when both are labelled):
    ``(N, 18, 2)`` pixels and ``(N, 18)`` labelled flags."""
    data = read_coco_json(PEOPLE / "annotations" / "person_keypoints_val2017.json")
    image_id = next(im["id"] for im in data["images"] if im["file_name"] == name)
    index = keypoint_index_map(COCO18, COCO17)  # COCO18 index of each COCO17 keypoint
    kps, vis = [], []
    for ann in data["annotations"]:
        if ann["image_id"] != image_id or not ann.get("num_keypoints"):
            continue
        k = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)
        xy, v = np.zeros((18, 2)), np.zeros(18, bool)
        xy[index], v[index] = k[:, :2], k[:, 2] > 0
        shoulders = [COCO18.keypoints.index(n) for n in ("left_shoulder", "right_shoulder")]
        v[1] = v[shoulders].all()
        xy[1] = xy[shoulders].mean(axis=0)
        kps.append(xy)
        vis.append(v)
    return np.stack(kps), np.stack(vis)


@pytest.fixture(scope="module")
def bundle(imported):
    model, mean, std = imported
    return ModelBundle(model, COCO18, PafCodec(COCO18, IR_SIZE, stride=8), mean, std, "lightweight_openpose")


def _limb_projections(bundle: ModelBundle, name: str) -> np.ndarray:
    """``(19, 19)``: mean over the labelled people of a photo of the projection of PAF channel pair ``j`` on the
    unit vector of limb ``i``, sampled along the labelled limb (NaN where no person has both ends labelled)."""
    predictor = Predictor(bundle)
    image = np.ascontiguousarray(cv2.imread(str(PEOPLE / "val2017" / name))[:, :, ::-1])
    prepared = predictor.prepare(image)
    with torch.no_grad():
        pafs = bundle.network(prepared.tensor[None])[-1][1][0].numpy()
    kps, vis = _people(name)
    cells = bundle.codec.to_map(kps @ prepared.affine[:, :2].T + prepared.affine[:, 2])
    t = np.linspace(0.1, 0.9, 9)
    table = np.full((len(COCO18.limbs), len(COCO18.limbs)), np.nan)
    for li, (a, b) in enumerate(COCO18.limbs):
        on = [p for p in range(len(kps)) if vis[p, a] and vis[p, b] and np.hypot(*(cells[p, b] - cells[p, a])) >= 2]
        if not on:
            continue
        d = cells[on, b] - cells[on, a]
        u = d / np.hypot(d[:, 0], d[:, 1])[:, None]
        pts = np.round(cells[on, a][:, None] + t[None, :, None] * d[:, None]).astype(int)  # (P, 9, 2)
        for lj in range(len(COCO18.limbs)):
            field = pafs[2 * lj:2 * lj + 2, pts[..., 1], pts[..., 0]]  # (2, P, 9)
            table[li, lj] = np.mean(field[0] * u[:, 0, None] + field[1] * u[:, 1, None])
    return table


def test_paf_channels_follow_coco18_limb_order(bundle):
    """Along each labelled limb ``i`` the field is strongest in channels ``2 i, 2 i + 1`` (after the import's
    reordering) and points from the limb's first keypoint to its second. Measured (mean projection, own pair /
    best other pair): 0.19-1.02 / at most 0.18 on photo 183709 (4 people), 0.54-0.94 / at most 0.57 on 217285 (13
    people; parallel limbs of small people overlap); the face limbs are too small to sample at this size."""
    seen = set()
    for name in (PHOTOS[1], "000000217285.jpg"):
        table = _limb_projections(bundle, name)
        for li in np.where(np.isfinite(table[:, 0]))[0]:
            a, b = COCO18.limbs[li]
            assert np.argmax(table[li]) == li and table[li, li] > 0.15, (
                name, COCO18.keypoints[a], COCO18.keypoints[b], np.round(table[li], 2))
            seen.add(int(li))
    assert len(seen) >= 15, sorted(seen)


def test_grouping_finds_the_labelled_people(bundle):
    """The imported model through handpose's bottom-up path (letterbox to 456x256, PafCodec grouping with COCO18's
    limbs, back to pixels) on a photo of 13 people: each of the 10 with at least 10 labelled keypoints gets its own
    instance. Measured: mean error 4-9 px (people 37-238 px tall), 71-100% of the labelled keypoints found."""
    name = "000000217285.jpg"
    image = np.ascontiguousarray(cv2.imread(str(PEOPLE / "val2017" / name))[:, :, ::-1])
    res = Predictor(bundle).predict_arrays([image], names=[name])[0]
    kps, vis = _people(name)
    big = vis.sum(axis=1) >= 10
    assert big.sum() == 10
    chosen = []
    for gt, v in zip(kps[big], vis[big], strict=True):
        size = np.ptp(gt[v], axis=0).max()
        found = np.isfinite(res.keypoints[:, v]).all(axis=-1)  # (M, n)
        dist = np.linalg.norm(res.keypoints[:, v] - gt[v], axis=-1)
        mean = np.where(found, dist, 0.0).sum(axis=1) / np.maximum(found.sum(axis=1), 1)
        errors = np.where(found.any(axis=1), mean, np.inf)
        best = int(np.argmin(errors))
        assert errors[best] < 0.15 * size + 5 and found[best].sum() >= 0.7 * v.sum(), (errors[best], size)
        chosen.append(best)
    assert len(set(chosen)) == len(chosen)  # one instance per person


def test_coco_ap_on_a_coco17_file_drops_the_neck(bundle, tmp_path):
    """evaluate_bottom_up maps the COCO18 model's keypoints to the file's COCO17 ones by name (the neck dropped)
    and scores with COCO's sigmas. Measured on these two photos (14 labelled people, 12 of them small spectators) at
    456x256: AP 0.22, all 14 matched (at 784x368 the whole val set scores 0.41: examples/body/report.py)."""
    import json

    from handpose.evaluate import evaluate_bottom_up

    data = read_coco_json(PEOPLE / "annotations" / "person_keypoints_val2017.json")
    keep = {im["id"] for im in data["images"] if im["file_name"] in ("000000000139.jpg", "000000217285.jpg")}
    subset = {**data, "images": [im for im in data["images"] if im["id"] in keep],
              "annotations": [a for a in data["annotations"] if a["image_id"] in keep]}
    ann = tmp_path / "two.json"
    ann.write_text(json.dumps(subset))
    scores = evaluate_bottom_up(bundle, ann, PEOPLE / "val2017", batch_size=1)
    assert scores["n_instances"] == sum(1 for a in subset["annotations"] if a.get("num_keypoints"))
    assert scores["matched"] == scores["n_instances"]
    assert scores["AP"] > 0.18, scores
