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
"""

from __future__ import annotations

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
from .data import ImageSet
from .models import Classifier
from .plots import ARM_COLOURS, DPI, PROTOCOL_LABELS, SPLIT_COLOURS, arm_label, legend_below
from .pretrain import features

BLOCKS = ("layer4", "layer3", "layer2", "layer1")
CLASS_COLOURS = tuple(SPLIT_COLOURS) + ("#6a4c93", "#b5838d", "#6b705c", "#9c6644", "#3a86ff", "#8ac926")  # no arm's


@torch.no_grad()
def block_sizes(model: Classifier, size: int) -> dict[str, tuple[int, int]]:
    """Spatial size of each ResNet block's output for ``size`` px inputs."""
    sizes, hooks = {}, []
    for name in BLOCKS:
        block = getattr(model.encoder, name)
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
    with GradCAM(model=model, target_layers=[getattr(model.encoder, layer)]) as cam:
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


def _runnable(configs):
    from .models import imagenet_weights_problem
    return [c for c in configs if not (c.arm == "imagenet" and imagenet_weights_problem(c.backbone))]


def gradcam_panel(configs, n_images: int, seed: int = 0, layer: str | None = None, store=None) -> dict:
    """Grad-CAM of every adapted model in ``configs`` (``keep_model=True``, one target) on the same
    ``n_images`` seeded test images, for each image's true class; the keywords of :func:`plot_gradcam` plus
    ``layer`` (the block used, the same for every model) and ``grid`` (its map size)."""
    from .data import load
    from .experiment import load_model
    configs = _runnable(configs)
    if len({c.target for c in configs}) != 1:
        raise ValueError("gradcam_panel compares models of one target")
    test = load(configs[0].target, "test", configs[0].size)
    index = pick_images(test, n_images, seed)
    images, labels = test.images[index], test.labels[index]
    labels = labels if labels.ndim == 1 else labels.argmax(1)
    maps, probs, grid = {}, {}, None
    for cfg in configs:
        model = load_model(cfg, store)
        layer = layer or cam_layer(model, cfg.size)
        grid = block_sizes(model, cfg.size)[layer]
        name = arm_label(cfg.arm) if len({c.protocol for c in configs}) == 1 else f"{cfg.arm} {cfg.protocol}"
        maps[name] = gradcam(model, images, labels, layer)
        probs[name] = probabilities(model, images, test.task)
    return {"images": images, "labels": labels, "maps": maps, "probs": probs, "classes": test.classes,
            "layer": layer, "grid": grid}


def embedding_panel(configs, max_points: int = 500, seed: int = 0, store=None) -> tuple[dict, dict, tuple]:
    """t-SNE embeddings and silhouette scores of the test features of every adapted model in ``configs``:
    ``({(arm, protocol): (xy, labels, silhouette)}, {(arm, protocol): silhouette}, classes)``."""
    from .data import load
    from .experiment import load_model
    embeddings, scores, classes = {}, {}, ()
    for cfg in _runnable(configs):
        test = load(cfg.target, "test", cfg.size)
        classes = test.classes
        feats, labels = test_features(load_model(cfg, store), test, max_points, seed)
        score = separability(feats, labels)
        embeddings[(cfg.arm, cfg.protocol)] = (tsne(feats, seed), labels, score)
        scores[(cfg.arm, cfg.protocol)] = score
    return embeddings, scores, classes
