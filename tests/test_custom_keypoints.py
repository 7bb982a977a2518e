"""Custom keypoint sets without code edits: the COCO category (or the config) gives OKS sigmas, colours and groups,
flip pairs, the grouping root and the numbering of its skeleton pairs; all of them reach evaluation, drawing,
training and the saved model. Real COCO files (coco-person-mini, coco-wholebody-hands), edited in tmp_path."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from handpose import HandposeError, load_model
from handpose.bundle import ModelBundle
from handpose.cli import app
from handpose.coco_eval import coco_keypoint_ap
from handpose.codecs.paf import PafCodec
from handpose.config import TrainConfig
from handpose.data.coco import load_coco, read_coco_json, skeleton_from_coco
from handpose.data.image import read_image
from handpose.data.transforms import AugmentConfig, Augmenter
from handpose.grouping import group
from handpose.metrics import oks
from handpose.skeleton import COCO17, HAND21, Skeleton
from handpose.train import build_datasets
from handpose.visualize import draw_skeleton

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PERSON = DATA / "coco-person-mini"
PERSON_JSON = PERSON / "annotations" / "person_keypoints_val2017.json"
HANDS = DATA / "coco-wholebody-hands"
HANDS_JSON = HANDS / "annotations" / "hands_val.json"
#: COCO's 17 person keypoints under OpenPose's names: a custom set (not the built-in COCO17) that says left/right.
OPENPOSE_NAMES = ["Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder", "LElbow", "RElbow", "LWrist",
                  "RWrist", "LHip", "RHip", "LKnee", "RKnee", "LAnkle", "RAnkle"]
#: The hand annotation the OKS and drawing tests use (image 109313: one right hand, all 21 keypoints labelled).
HAND_ANN = 2251

runner = CliRunner()


@pytest.fixture(scope="module")
def person() -> dict:
    if not PERSON_JSON.is_file():
        pytest.skip(f"{PERSON_JSON} not present")
    return json.loads(PERSON_JSON.read_text())


@pytest.fixture(scope="module")
def hands() -> dict:
    if not HANDS_JSON.is_file():
        pytest.skip(f"{HANDS_JSON} not present")
    return json.loads(HANDS_JSON.read_text())


def edited(data: dict, path: Path, **category) -> Path:
    """``data`` with keys of its keypoint category replaced (a value None deletes the key), written to ``path``."""
    cat = {**data["categories"][0], **category}
    cat = {k: v for k, v in cat.items() if v is not None}
    path.write_text(json.dumps({**data, "categories": [cat]}))
    return path


def one_hand(hands: dict, tmp_path: Path, **category) -> tuple[Path, dict]:
    """A COCO file of the one annotation ``HAND_ANN`` and its image, with the category edited; and the annotation."""
    ann = next(a for a in hands["annotations"] if a["id"] == HAND_ANN)
    image = next(im for im in hands["images"] if im["id"] == ann["image_id"])
    path = edited({**hands, "images": [image], "annotations": [ann]}, tmp_path / "hand.json", **category)
    return path, ann


def test_category_sigmas_change_oks(hands, tmp_path):
    # every keypoint of the hand moved by (3, 4): d^2 = 25 px^2; OKS = exp(-d^2 / (2 area (2 sigma)^2)) per keypoint
    _, ann = one_hand(hands, tmp_path)
    area = ann["area"]
    assert area == pytest.approx(2613.2392)
    gt = np.asarray(ann["keypoints"], np.float64).reshape(1, 21, 3)
    pred = gt[..., :2] + [3.0, 4.0]
    det = [{"image_id": ann["image_id"], "category_id": 1, "score": 1.0,
            "keypoints": np.concatenate([pred[0], np.ones((21, 1))], 1).reshape(-1).tolist()}]
    # by hand: sigma 0.1 -> exp(-25 / (2 * 2613.2392 * 0.04)) = exp(-0.119584) = 0.88730;
    #          sigma 0.05 -> exp(-25 / (2 * 2613.2392 * 0.01)) = exp(-0.478335) = 0.61982
    expected = {0.1: 0.88730, 0.05: 0.61982}
    assert math.exp(-25 / (2 * area * 0.2 ** 2)) == pytest.approx(expected[0.1], abs=1e-5)
    for sigma, value in expected.items():
        path, _ = one_hand(hands, tmp_path, sigmas=[sigma] * 21)
        skeleton = skeleton_from_coco(read_coco_json(path), path)
        assert skeleton.sigmas == (sigma,) * 21
        assert oks(pred, gt[..., :2], gt[..., 2] > 0, area, skeleton.sigmas)[0] == pytest.approx(value, abs=1e-5)
        # pycocotools with the category's sigmas: one detection matches at the thresholds 0.50, 0.55, ... <= OKS
        stats = coco_keypoint_ap(read_coco_json(path), det, skeleton)
        assert stats["AP"] == pytest.approx(sum(t <= value for t in np.linspace(0.5, 0.95, 10)) / 10)
    assert coco_keypoint_ap(read_coco_json(path), det, skeleton)["AP"] == pytest.approx(0.3)   # 0.50-0.60
    # without sigmas the 21-keypoint hand category keeps COCO-WholeBody's hand sigmas (0.017-0.047: OKS 0.02)
    plain, _ = one_hand(hands, tmp_path)
    assert skeleton_from_coco(read_coco_json(plain)).sigmas == HAND21.sigmas
    assert oks(pred, gt[..., :2], gt[..., 2] > 0, area, HAND21.sigmas)[0] == pytest.approx(
        np.mean(np.exp(-25 / (2 * area * (2 * np.asarray(HAND21.sigmas)) ** 2))))


def test_sigmas_refused_when_wrong(hands, tmp_path):
    path, _ = one_hand(hands, tmp_path, sigmas=[0.05] * 20)
    with pytest.raises(HandposeError, match=r"hand\.json: COCO category 'hand' \(id 1\): sigmas must be 21 numbers"):
        skeleton_from_coco(read_coco_json(path), path)
    with pytest.raises(HandposeError, match="config: oks_sigmas must be 21 numbers > 0"):
        TrainConfig(oks_sigmas=[0.05] * 20 + [0]).customise_skeleton(HAND21)


def hand_category_extras() -> dict:
    """Groups per finger (MediaPipe's names), colours as CVAT writes them (hex), and the grouping root by name."""
    fingers = ["wrist"] + [f for f in ("thumb", "index", "middle", "ring", "pinky") for _ in range(4)]
    return {"groups": fingers, "root": "MIDDLE_FINGER_MCP",
            "colours": {"wrist": "#ffffff", "thumb": "#ff0000", "index": "#00ff00", "middle": "#0000ff",
                        "ring": [255, 255, 0], "pinky": [255, 0, 255]}}


def test_colours_survive_bundle_round_trip_and_draw(hands, tmp_path):
    import torch

    from handpose.export import export_onnx
    from handpose.models import create_model

    path, ann = one_hand(hands, tmp_path, **hand_category_extras())
    records, skeleton = load_coco(path, HANDS / "images")
    assert skeleton.groups[4] == "thumb" and skeleton.colours["thumb"] == (255, 0, 0)
    assert skeleton.colour_of(20) == (255, 0, 255) and skeleton.root == 9
    torch.manual_seed(0)
    net = create_model("lightweight_openpose", 21, (128, 128), num_limbs=len(skeleton.limbs)).eval()
    bundle = ModelBundle(net, skeleton, PafCodec(skeleton, (128, 128), stride=8), [0.5] * 3, [0.25] * 3,
                         "lightweight_openpose")
    bundle.save(tmp_path / "m.pt")
    assert export_onnx(bundle, tmp_path / "m.onnx") < 1e-4
    for loaded in (load_model(tmp_path / "m.pt"), load_model(tmp_path / "m.onnx")):
        assert loaded.skeleton == skeleton  # colours, groups, sigmas, root, flip_perm, limbs
        assert loaded.skeleton.colours["index"] == (0, 255, 0)
    # drawn in the category's colours: the centre of each keypoint's dot (drawn over the limbs) is its group's colour
    image = read_image(records[0].image_path)
    drawn = draw_skeleton(image, records[0].keypoints[0], load_model(tmp_path / "m.pt").skeleton)
    kp = np.asarray(ann["keypoints"]).reshape(21, 3)
    for k, colour in ((0, (255, 255, 255)), (4, (255, 0, 0)), (20, (255, 0, 255))):
        x, y = (int(round(v)) for v in kp[k, :2])
        assert tuple(drawn[y, x]) == colour, k
    # a model saved before colours were kept (no "colours"/"root") loads with its built-in set's colours, root 0
    old = {k: v for k, v in skeleton.to_dict().items() if k not in ("colours", "root")}
    assert Skeleton.from_dict(old).root == 0
    assert Skeleton.from_dict({**COCO17.to_dict(), "name": "coco18", "colours": None}).colours["left"] == (0, 130, 200)


def test_colours_per_keypoint(hands, tmp_path):
    extras = hand_category_extras()
    per_keypoint = [extras["colours"][g] for g in extras["groups"]]
    path, _ = one_hand(hands, tmp_path, groups=extras["groups"], colours=per_keypoint)
    s = skeleton_from_coco(read_coco_json(path))
    assert s.groups == tuple(extras["groups"]) and s.colour_of(8) == (0, 255, 0)
    # K colours without groups: the hand keeps HAND21's finger groups when each finger has one colour ...
    path, _ = one_hand(hands, tmp_path, colours=per_keypoint)
    s = skeleton_from_coco(read_coco_json(path))
    assert s.groups == HAND21.groups and s.colour_of(20) == (255, 0, 255)
    # ... else every keypoint is its own group
    path, _ = one_hand(hands, tmp_path, colours=per_keypoint[:-1] + ["#123456"])
    s = skeleton_from_coco(read_coco_json(path))
    assert s.groups[20] == "PINKY_TIP" and s.colour_of(20) == (0x12, 0x34, 0x56) and s.colour_of(19) == (255, 0, 255)
    path, _ = one_hand(hands, tmp_path, groups=extras["groups"], colours=per_keypoint[:-1] + ["#123456"])
    with pytest.raises(HandposeError, match=r"colours gives the keypoints of group\(s\) \['pinky'\] different colours"):
        skeleton_from_coco(read_coco_json(path), path)
    path, _ = one_hand(hands, tmp_path, colours={"palm": [1, 2, 3]})
    with pytest.raises(HandposeError, match=r"colours name groups \['palm'\] that no keypoint has"):
        skeleton_from_coco(read_coco_json(path), path)
    path, _ = one_hand(hands, tmp_path, groups=extras["groups"], colours={"thumb": [300, 0, 0]})
    with pytest.raises(HandposeError, match=r"colours of group 'thumb': \[300, 0, 0\] is not a colour"):
        skeleton_from_coco(read_coco_json(path), path)


def test_root_changes_grouping(hands, tmp_path):
    # The hand's palm is a cycle (0-5, 5-9, 9-13, 13-17, 17-0): the limb tree leaves out the limb nearest the far
    # side from the root. With the wrist-to-pinky limb's field gone, grouping from the wrist (keypoint 0) splits
    # the hand in two; from the middle finger's root (the category's "root") it joins 17 through 13-17: one hand.
    path, ann = one_hand(hands, tmp_path)
    kp = np.asarray(ann["keypoints"], np.float64).reshape(21, 3)
    x, y, w, h = ann["bbox"]
    xy = (kp[:, :2] - [x, y]) * (100 / max(w, h)) + 14  # the hand enlarged into a 128 x 128 input
    found = {}
    for root in (None, "MIDDLE_FINGER_MCP"):
        path, _ = one_hand(hands, tmp_path, root=root)
        skeleton = skeleton_from_coco(read_coco_json(path))
        codec = PafCodec(skeleton, (128, 128), stride=1, sigma=1.5)
        heat, paf = codec.encode(xy[None], kp[None, :, 2])
        li = skeleton.limbs.index((0, 17))
        paf[2 * li:2 * li + 2] = 0
        inst = group(heat, paf, skeleton)  # the root from the Skeleton
        found[skeleton.root] = sorted(int(np.isfinite(k[:, 0]).sum()) for k in inst.keypoints)
        assert np.nanmax(np.abs(inst.keypoints - xy[None])) < 1e-3  # every keypoint found is in its place
    assert found == {0: [8, 13], 9: [21]}
    # the config's grouping_root replaces the category's (by name or 0-based index)
    assert TrainConfig(grouping_root=9).customise_skeleton(skeleton_from_coco(read_coco_json(path))).root == 9
    assert TrainConfig(grouping_root="wrist").customise_skeleton(skeleton).root == 0
    with pytest.raises(HandposeError, match="config: grouping_root: no keypoint named 'palm'"):
        TrainConfig(grouping_root="palm").customise_skeleton(skeleton)


def openpose_person(person: dict, tmp_path: Path, **category) -> Path:
    """coco-person-mini val with OpenPose's keypoint names (a custom set with left and right)."""
    return edited(person, tmp_path / "val.json", keypoints=OPENPOSE_NAMES, name="body", **category)


def person_config(path: Path, tmp_path: Path, **values) -> Path:
    config = tmp_path / "body.yaml"
    lines = {"dataset": "coco", "train_ann": str(path), "train_images": str(PERSON / "val2017"),
             "val_ann": str(path), "val_images": str(PERSON / "val2017"), "skeleton": "", "model": "resunet",
             "input_size": [64, 64], "max_epochs": 1, "num_workers": 0, "cache": False,
             "out_dir": str(tmp_path / "runs"), **values}
    config.write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in lines.items()))
    return config


def test_left_right_names_without_flip_pairs_refused(person, tmp_path):
    path = openpose_person(person, tmp_path)
    r = runner.invoke(app, ["train", str(person_config(path, tmp_path)), "--no-progress"])
    assert r.exit_code != 0
    message = " ".join(str(r.output).split())
    assert ("config: skeleton 'body': keypoint names say left and right (LEye/REye, LEar/REar, LShoulder/RShoulder, "
            "LElbow/RElbow, ...)" in message), message
    # the pairs to add, found by name, are COCO's flip pairs
    pairs = [[i, COCO17.flip_perm[i]] for i in range(1, 17, 2)]
    assert f"Add flip_pairs: {pairs}" in message and "or set aug_flip: 0" in message
    assert not (tmp_path / "runs" / "run" / "model.pt").exists()


@pytest.mark.parametrize("left, right", [("left_hand", "right_hand"), ("l_hand", "r_hand"), ("hand_left", "hand_right"),
                                         ("hand_l", "hand_r"), ("LHand", "RHand"), ("handLeft", "handRight"),
                                         ("LEFT_HAND", "RIGHT_HAND")])
def test_left_right_name_styles(left, right):
    s = Skeleton("s", ("neck", left, right), ((0, 1), (0, 2)))
    with pytest.raises(HandposeError, match=rf"\({left}/{right}\) but no flip pairs .* Add flip_pairs: \[\[1, 2\]\]"):
        s.check_flip(0.5)
    s.check_flip(0.0)  # no flips: nothing to swap
    s.with_flip_pairs([[1, 2]]).check_flip(0.5)
    # names without a side (or with one side only) are not refused
    Skeleton("s", ("wrist", "little_tip", "ring_l1"), ((0, 1), (0, 2))).check_flip(0.5)


def test_category_flip_pairs_used(person, tmp_path):
    names = [["LEye", "REye"], ["LEar", "REar"]] + [[OPENPOSE_NAMES[i], OPENPOSE_NAMES[i + 1]] for i in range(5, 17, 2)]
    path = openpose_person(person, tmp_path, flip_pairs=names)
    records, skeleton = load_coco(path, PERSON / "val2017")
    assert skeleton.flip_perm == COCO17.flip_perm
    skeleton.check_flip(0.5)
    # 1-based indices, as the category's skeleton: the same pairs
    one_based = [[i + 1, COCO17.flip_perm[i] + 1] for i in range(1, 17, 2)]
    assert skeleton_from_coco(read_coco_json(openpose_person(person, tmp_path, flip_pairs=one_based))).flip_perm \
        == COCO17.flip_perm
    # training takes them: the bundle's skeleton swaps them, and a flipped photo keeps "LShoulder" on the person's left
    cfg = TrainConfig(dataset="coco", train_ann=str(path), train_images=str(PERSON / "val2017"), val_ann=str(path),
                      val_images=str(PERSON / "val2017"), skeleton="", model="resunet", input_size=[64, 64],
                      cache=False)
    meta = build_datasets(cfg, "heatmap", 1)[2]
    assert meta["skeleton"]["flip_perm"] == list(COCO17.flip_perm)
    record = max(records, key=lambda r: int((r.visible[0][5:7] > 0).sum()))
    image = read_image(record.image_path)
    flip = Augmenter(AugmentConfig(rotate=0, scale=0, translate=0, flip=1.0, colour=0), skeleton)
    out, kp, vis, _ = flip(image, record.keypoints, record.visible)
    w = image.shape[1]
    assert vis[0, 5] == record.visible[0, 6] > 0
    assert kp[0, 5, 0] == pytest.approx(w - record.keypoints[0, 6, 0], abs=1.0)   # LShoulder <- mirrored RShoulder
    assert kp[0, 5, 1] == pytest.approx(record.keypoints[0, 6, 1])
    # the config's flip_pairs replace the category's
    assert TrainConfig(flip_pairs=[[1, 2]]).customise_skeleton(skeleton).flip_perm == (0, 2, 1) + tuple(range(3, 17))


def test_one_based_skeleton_that_cannot_be_told(person, tmp_path):
    # COCO's 1-based person skeleton without its pair that names keypoint 17 (the right ankle): pairs 1..16
    pairs = [p for p in person["categories"][0]["skeleton"] if 17 not in p]
    assert len(pairs) == 18 and min(min(p) for p in pairs) == 1
    path = openpose_person(person, tmp_path, skeleton=pairs)
    with pytest.raises(HandposeError, match=r"val\.json: COCO category 'body' \(id 1\): skeleton pairs \[\[16, 14\], "
                                            r".* name neither keypoint 0 nor keypoint 17, so they could be 0-based or "
                                            r"1-based \(COCO's\)\. Add \"skeleton_base\": 1"):
        load_coco(path, PERSON / "val2017")
    _, skeleton = load_coco(openpose_person(person, tmp_path, skeleton=pairs, skeleton_base=1), PERSON / "val2017")
    assert skeleton.limbs == tuple((a - 1, b - 1) for a, b in pairs)
    assert set(skeleton.limbs) < set(COCO17.limbs)
    _, skeleton = load_coco(openpose_person(person, tmp_path, skeleton=pairs, skeleton_base=0), PERSON / "val2017")
    assert skeleton.limbs == tuple(map(tuple, pairs))
    # an explicit base the pairs contradict, and the whole 1-based skeleton (names 17: told without a base)
    with pytest.raises(HandposeError, match="skeleton_base is 0 but a skeleton pair names keypoint 17"):
        load_coco(openpose_person(person, tmp_path, skeleton_base=0), PERSON / "val2017")
    _, skeleton = load_coco(openpose_person(person, tmp_path), PERSON / "val2017")
    assert sorted(skeleton.limbs) == sorted(COCO17.limbs)
    # indices in flip_pairs / root cannot be read either when the base is unknown; names can
    with pytest.raises(HandposeError, match="skeleton_base"):
        skeleton_from_coco(read_coco_json(openpose_person(person, tmp_path, skeleton=[], flip_pairs=[[1, 2]])))
