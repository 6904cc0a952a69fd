"""Where the adapted models look, and how their features arrange the classes.

- **Grad-CAM** (Selvaraju et al., "Grad-CAM: Visual explanations from deep networks via gradient-based
  localization", ICCV 2017) through ``pytorch-grad-cam`` (Gildenblat et al.): the class score's gradients,
  averaged per channel, weight the feature maps of one encoder layer; the weighted sum, rectified and
  upsampled to the image, says which regions raised that score. Each map is min-max scaled per image (as
  the library does), so maps show *where*, not *how strongly*, and compare across arms by location only.
- **t-SNE** maps (van der Maaten and Hinton, JMLR 2008, via scikit-learn) of the encoder's test-set
  features, coloured by class, with the silhouette score (Rousseeuw, 1987) of the same features as a
  number for how well the classes separate.

The layer: Grad-CAM is usually taken at the last block, ``encoder.layer4``. At 28 px with the ImageNet
stem that block's map is 1 x 1, which localises nothing (the scaled map is constant), so
:func:`cam_layer` takes the deepest block whose map has at least ``min_cells`` x ``min_cells`` cells and
the chapter states which one it used.

What the chapter shows of each model (the maps, the embedding) is a stored run of its own (:class:`ExplainConfig`,
kind ``explain``), so the chapter reads it without the model's weights.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from .adapt import probabilities
from .augment import to_float
from .data import ImageSet, load
from .experiment import AdaptConfig, load_model
from .models import Classifier, backbone, blocks, imagenet_weights_problem
from .plots import ARM_COLOURS, DPI, PROTOCOL_LABELS, SPLIT_COLOURS, arm_label, legend_below
from .pretrain import features
from .store import RunStore
from .validation import ParameterError, check_choice, check_number

BLOCKS = ("layer4", "layer3", "layer2", "layer1")
CLASS_COLOURS = tuple(SPLIT_COLOURS) + ("#6a4c93", "#b5838d", "#6b705c", "#9c6644", "#3a86ff", "#8ac926")  # no arm's


@torch.no_grad()
def block_sizes(model: Classifier, size: int) -> dict[str, tuple[int, int]]:
    """Spatial size of each ResNet block's output for ``size`` px inputs."""
    sizes, hooks = {}, []
    for name in BLOCKS:
        block = blocks(model.encoder, name)[0]
        hooks.append(block.register_forward_hook(
            lambda m, i, o, name=name: sizes.__setitem__(name, tuple(o.shape[-2:]))))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        model(to_float(torch.zeros(1, 3, size, size, dtype=torch.uint8, device=device)))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return sizes


def cam_layer(model: Classifier, size: int, min_cells: int = 4) -> str:
    """The deepest ResNet block (``layer4`` first) whose feature map is at least ``min_cells`` wide and high."""
    sizes = block_sizes(model, size)
    for name in BLOCKS:
        if min(sizes[name]) >= min_cells:
            return name
    return BLOCKS[-1]


def pick_images(test: ImageSet, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` seeded test indices, taking the classes in turn (so every class shows up when ``n`` allows)."""
    g = torch.Generator().manual_seed(seed)
    labels = test.labels if test.labels.ndim == 1 else test.labels.argmax(1)
    per_class = [c[torch.randperm(len(c), generator=g)] for c in
                 (torch.nonzero(labels == k).flatten() for k in torch.unique(labels))]
    chosen, i = [], 0
    while len(chosen) < min(n, len(labels)):
        for c in per_class:
            if i < len(c) and len(chosen) < n:
                chosen.append(int(c[i]))
        i += 1
    return torch.tensor(chosen, dtype=torch.long)


def gradcam(model: Classifier, images: torch.Tensor, classes, layer: str | None = None) -> np.ndarray:
    """Grad-CAM maps (``N x H x W``, in [0, 1]) of ``classes`` (one index per image) for uint8 ``images``,
    at ``model.encoder.<layer>`` (default :func:`cam_layer`)."""
    model.eval()
    layer = layer or cam_layer(model, images.shape[-1])
    device = next(model.parameters()).device
    with GradCAM(model=model, target_layers=blocks(model.encoder, layer)) as cam:
        maps = cam(input_tensor=to_float(images.to(device)), targets=[ClassifierOutputTarget(int(c)) for c in classes])
    return np.asarray(maps, dtype=np.float32)


def plot_gradcam(images: torch.Tensor, labels, maps: dict, probs: dict, classes, title: str = "", **_):
    """Rows: test images; columns: the image, then each model's Grad-CAM overlay for the image's true class,
    titled with that model's probability for it. ``maps``/``probs``: column title -> array."""
    import matplotlib.pyplot as plt
    names = list(maps)
    n = len(images)
    fig, axes = plt.subplots(n, len(names) + 1, figsize=(1.35 * (len(names) + 1), 1.4 * n + 0.5), dpi=DPI,
                             squeeze=False)
    plt.close(fig)
    for i in range(n):
        img = images[i].permute(1, 2, 0).numpy()
        grey = img.shape[-1] == 1
        shown = img[..., 0] if grey else img
        axes[i, 0].imshow(shown, cmap="gray" if grey else None, vmin=0, vmax=255)
        label = classes[int(labels[i])]
        axes[i, 0].set_ylabel(label if len(label) <= 14 else label[:13] + "…", fontsize=7)
        for j, name in enumerate(names, 1):
            axes[i, j].imshow(shown, cmap="gray" if grey else None, vmin=0, vmax=255)
            axes[i, j].imshow(maps[name][i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            axes[i, j].set_title(f"p={probs[name][i, int(labels[i])]:.2f}", fontsize=7, pad=2)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    for j, name in enumerate(["image"] + names):
        axes[0, j].set_title(f"{name}\n" + axes[0, j].get_title(), fontsize=7, pad=2)
    height = fig.get_size_inches()[1]
    if title:
        fig.suptitle(title, fontsize=9, y=0.995)
    fig.tight_layout(pad=0.3, rect=(0, 0, 1, 1 - (0.3 / height if title else 0)))
    return fig


def test_features(model: Classifier, test: ImageSet, max_points: int = 500, seed: int = 0):
    """(features, labels) of a seeded stratified subset (at most ``max_points``) of the test split."""
    index = pick_images(test, min(max_points, len(test)), seed).sort().values
    labels = test.labels[index]
    labels = labels if labels.ndim == 1 else labels.argmax(1)
    device = next(model.parameters()).device
    return features(model.encoder, test.images[index], device).cpu().numpy(), labels.numpy()


def tsne(feats: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-d t-SNE of ``feats`` (PCA initialisation, perplexity min(30, (n - 1) / 3), fixed seed).

    Runs on one thread: at a few hundred points, scikit-learn's OpenMP threads cost far more than they save
    on a shared CPU (30x slower on two busy cores), and one thread keeps the layout reproducible.
    """
    perplexity = float(max(2.0, min(30.0, (len(feats) - 1) / 3)))
    with threadpool_limits(1):
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(feats.astype(np.float32))


def separability(feats: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette score of the classes in feature space (cosine distance; -1 to 1, higher = better separated);
    NaN when only one class is present."""
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(silhouette_score(feats, labels, metric="cosine"))


def plot_embeddings(embeddings: dict, classes, title: str = ""):
    """One t-SNE panel per (arm, protocol), points coloured by class. ``embeddings``: (arm, protocol) ->
    (xy, labels, silhouette)."""
    import matplotlib.pyplot as plt
    protocols = list(dict.fromkeys(p for _, p in embeddings))
    arms = list(dict.fromkeys(a for a, _ in embeddings))
    fig, axes = plt.subplots(len(protocols), len(arms), figsize=(2.3 * len(arms), 2.3 * len(protocols) + 0.5),
                             dpi=DPI, squeeze=False)
    plt.close(fig)
    for r, protocol in enumerate(protocols):
        for c, arm in enumerate(arms):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if (arm, protocol) not in embeddings:
                ax.set_axis_off()
                continue
            xy, labels, score = embeddings[(arm, protocol)]
            for k in np.unique(labels):
                ax.scatter(*xy[labels == k].T, s=5, color=CLASS_COLOURS[int(k) % len(CLASS_COLOURS)],
                           label=classes[int(k)], alpha=0.8)
            ax.set_title(f"{arm_label(arm)}\n{PROTOCOL_LABELS.get(protocol, protocol)}, silhouette {score:.2f}",
                         fontsize=7, color=ARM_COLOURS.get(arm, "black"))
    legend_below(fig, axes[0, 0], fontsize=7, max_chars=24, markerscale=2)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def separability_table(scores: dict) -> pd.DataFrame:
    """(arm, protocol) -> silhouette, as an arm x protocol table."""
    rows = [{"arm": arm_label(a), "protocol": PROTOCOL_LABELS.get(p, p), "silhouette": s}
            for (a, p), s in scores.items()]
    table = pd.DataFrame(rows)
    return table.pivot(index="arm", columns="protocol", values="silhouette").reindex(
        index=list(dict.fromkeys(table["arm"])), columns=list(dict.fromkeys(table["protocol"])))


def finding(scores: dict) -> str:
    """Chapter 8's finding, from the silhouettes of :func:`embedding_panel` (``{(arm, protocol): silhouette}``):
    per protocol, the arms whose test features separate the classes best and worst. One seed, no test."""
    table = pd.Series(scores, dtype=float).dropna()
    if table.empty:
        return "No stored embeddings with two or more classes for this chapter's models yet."
    sentences = ["The silhouette of the classes in each encoder's test features (cosine distance, -1 to 1, higher "
                 "is better separated), for one seed and with no test:"]
    for protocol in dict.fromkeys(p for _, p in table.index):
        part = table.xs(protocol, level=1).sort_values(ascending=False, kind="stable")
        text = (f"{PROTOCOL_LABELS.get(protocol, protocol)}, highest for {arm_label(part.index[0])} at "
                f"{part.iloc[0]:.2f}")
        sentences.append(text + (f" and lowest for {arm_label(part.index[-1])} at {part.iloc[-1]:.2f}"
                                 if len(part) > 1 else ""))
    return sentences[0] + " " + "; ".join(sentences[1:]) + ". The maps describe the features; the accuracy " \
        "chapters decide which arm is better."


def _skipped(cfg: AdaptConfig) -> bool:
    return cfg.arm == "imagenet" and imagenet_weights_problem(cfg.backbone) is not None


def _runnable(evaluations):
    return [e for e in evaluations if not _skipped(e.adapt)]


def panel_layer(configs) -> str:
    """:func:`cam_layer` of the first runnable adaptation in ``configs`` (:class:`AdaptConfig`): the block a Grad-CAM
    panel uses for every model. It depends on the architecture alone, so it is read off an untrained model."""
    first = next((c for c in configs if not _skipped(c)), configs[0])
    return cam_layer(Classifier(backbone(first.backbone, first.stem), 1), first.size)


@dataclass(frozen=True)
class ExplainConfig:
    """What chapter 8 shows of one adapted model (``keep_model=True``): Grad-CAM at ``layer`` on ``n_images``
    seeded test images (:func:`pick_images`), and the t-SNE map and silhouette of the features of at most
    ``max_points`` seeded test images. A stored run of its own (kind ``explain``)."""

    adapt: AdaptConfig
    n_images: int
    layer: str
    max_points: int = 500
    seed: int = 0
    kind: ClassVar[str] = "explain"

    def __post_init__(self):
        if not self.adapt.keep_model:
            raise ParameterError("explain needs a config with keep_model=True")
        check_number("n_images", self.n_images, low=1, integer=True)
        check_choice("layer", self.layer, BLOCKS)
        check_number("max_points", self.max_points, low=2, integer=True)
        check_number("seed", self.seed, low=0, integer=True)

    def to_dict(self) -> dict:
        """The run's key: every field, the adaptation's in full (``label_noise`` included, as when the first
        explain runs were stored) with its pre-training as :meth:`~medlib.pretrain.PretrainConfig.to_dict` writes
        it."""
        out = asdict(self)
        out["adapt"]["pretrain"] = self.adapt.pretrain.to_dict() if self.adapt.pretrain else None
        return out


def _pack(array: np.ndarray) -> dict:
    """An array as JSON: dtype, shape and its bytes in base64 (read back bit for bit by :func:`_unpack`)."""
    array = np.ascontiguousarray(array)
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": base64.b64encode(array.tobytes()).decode()}


def _unpack(packed: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(packed["data"]), dtype=packed["dtype"]).reshape(packed["shape"])


def explanation(ec: ExplainConfig, store=None, progress: bool = False) -> dict:
    """The stored Grad-CAM maps and embedding of ``ec`` (computed first from the adapted model if missing), as JSON:
    the test ``index`` and uint8 ``images`` shown, their true ``labels``, the ``maps`` (float16, N x H x W) for those
    labels and the model's ``probs``, the map's ``grid``, the t-SNE ``xy`` of the feature subset with its ``points``
    (labels) and ``silhouette``, and the target's ``classes``. Once stored, read without the model's weights."""
    store = store or RunStore()
    cfg = ec.adapt

    def compute(run_dir):
        model = load_model(cfg, store)
        test = load(cfg.target, "test", cfg.size)
        index = pick_images(test, ec.n_images, ec.seed)
        images, labels = test.images[index], test.labels[index]
        labels = labels if labels.ndim == 1 else labels.argmax(1)
        feats, points = test_features(model, test, ec.max_points, ec.seed)
        return {"index": index.tolist(), "images": _pack(images.numpy()), "labels": labels.tolist(),
                "maps": _pack(gradcam(model, images, labels, ec.layer).astype(np.float16)),
                "probs": _pack(probabilities(model, images, test.task).astype(np.float32)),
                "grid": list(block_sizes(model, cfg.size)[ec.layer]), "classes": list(test.classes),
                "xy": _pack(tsne(feats, ec.seed).astype(np.float32)), "points": points.tolist(),
                "silhouette": separability(feats, points)}

    return store.cached(ec.kind, ec.to_dict(), compute)


def gradcam_panel(evaluations, store=None) -> dict:
    """The stored Grad-CAM of every model in ``evaluations`` (:class:`ExplainConfig`, one target, the same images
    and layer) as the keywords of :func:`plot_gradcam`, plus ``layer`` (the block used) and ``grid`` (its map
    size)."""
    evaluations = _runnable(evaluations)
    if len({(e.adapt.target, e.n_images, e.seed, e.layer) for e in evaluations}) != 1:
        raise ParameterError("gradcam_panel compares models of one target on the same images and layer")
    one_protocol = len({e.adapt.protocol for e in evaluations}) == 1
    maps, probs = {}, {}
    for ec in evaluations:
        result = explanation(ec, store)
        name = arm_label(ec.adapt.arm) if one_protocol else f"{ec.adapt.arm} {ec.adapt.protocol}"
        maps[name], probs[name] = _unpack(result["maps"]).astype(np.float32), _unpack(result["probs"])
    return {"images": torch.from_numpy(_unpack(result["images"]).copy()), "labels": result["labels"], "maps": maps,
            "probs": probs, "classes": result["classes"], "layer": ec.layer, "grid": tuple(result["grid"])}


def embedding_panel(evaluations, store=None) -> tuple[dict, dict, tuple]:
    """The stored t-SNE embeddings and silhouette scores of every model in ``evaluations``:
    ``({(arm, protocol): (xy, labels, silhouette)}, {(arm, protocol): silhouette}, classes)``."""
    embeddings, scores, classes = {}, {}, ()
    for ec in _runnable(evaluations):
        result = explanation(ec, store)
        key = (ec.adapt.arm, ec.adapt.protocol)
        embeddings[key] = (_unpack(result["xy"]), np.asarray(result["points"]), result["silhouette"])
        scores[key], classes = result["silhouette"], tuple(result["classes"])
    return embeddings, scores, classes
