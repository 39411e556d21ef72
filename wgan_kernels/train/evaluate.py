"""The Wasserstein-1 estimate and the PNG / npz outputs."""

from __future__ import annotations

import csv

import numpy as np
import torch

from .. import METHODS
from ..penalties import CLIP, GRADIENT_PENALTIES, parts_in_loss


def w1_assignment(real: np.ndarray, fake: np.ndarray) -> float:
    """W1 between two equal-size samples by minimum-cost assignment, Euclidean cost on
    flattened samples (WGAN-LP's estimate)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    real = real.reshape(len(real), -1).astype(np.float64)
    fake = fake.reshape(len(fake), -1).astype(np.float64)
    cost = cdist(real, fake)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@torch.no_grad()
def critic_levels(critic, real: np.ndarray, fake: np.ndarray, device, steps: int = 128):
    """Critic values on a grid covering the samples -> (xs, ys, values (len(ys), len(xs)))."""
    both = np.concatenate([real, fake])
    low, high = np.minimum(both.min(0), -2.0), np.maximum(both.max(0), 2.0)
    pad = 0.1 * (high - low)
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], steps, dtype=np.float32)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], steps, dtype=np.float32)
    grid_x, grid_y = np.meshgrid(xs, ys)  # (len(ys), len(xs))
    points = torch.from_numpy(np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)).to(device)
    values = torch.cat([critic(chunk).float() for chunk in points.split(8192)]).cpu().numpy()
    return xs, ys, values.reshape(len(ys), len(xs))


def save_levels(path_stem: str, iteration: int, xs, ys, values, real, fake) -> str:
    np.savez(path_stem + ".npz", xs=xs, ys=ys, values=values, real=real, fake=fake)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    contour = ax.contourf(xs, ys, values, levels=30, cmap="viridis")
    ax.contour(xs, ys, values, levels=15, colors="k", linewidths=0.3)
    ax.scatter(real[:, 0], real[:, 1], s=4, c="white", edgecolors="k", linewidths=0.2, label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=4, c="red", label="generated")
    fig.colorbar(contour, ax=ax, fraction=0.046)
    ax.set_title(f"critic level sets, iteration {iteration}")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path_stem + ".png", dpi=100)
    plt.close(fig)
    return path_stem + ".png"


def save_image_grid(path: str, images: np.ndarray, title: str, columns: int = 8) -> str:
    """images: (N, C, H, W) in [-1, 1]."""
    images = np.clip((images + 1.0) / 2.0, 0.0, 1.0)
    n, c, h, w = images.shape
    rows = (n + columns - 1) // columns
    grid = np.ones((rows * (h + 1) + 1, columns * (w + 1) + 1, c), dtype=np.float32)
    for i, image in enumerate(images):
        r, q = divmod(i, columns)
        grid[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + q * (w + 1): 1 + q * (w + 1) + w] = image.transpose(1, 2, 0)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(columns * 0.8, rows * 0.8))
    ax.imshow(grid[..., 0] if c == 1 else grid, cmap="gray" if c == 1 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def metric_panels(penalty: str) -> list:
    """The panels of metrics.png: [([(column, label), ...], title), ...]. The penalty panel holds
    what the loss of `penalty` contains; the rest is labelled as diagnostics."""
    in_loss = parts_in_loss(penalty)
    panels = [([("critic_loss", "critic loss (without the penalty)"), ("generator_loss", "generator loss")], "losses")]
    if penalty != CLIP:
        lines = [("penalty", "penalty (lambda * term, in the critic loss)")]
        if in_loss == ("above", "below"):  # two-sided: both parts are in the loss
            lines += [("penalty_above", "its part from norms above the target"),
                      ("penalty_below", "its part from norms below the target")]
        panels.append((lines, f"penalty {penalty!r} as in the loss"))
        if penalty in GRADIENT_PENALTIES and in_loss == ("above",) and METHODS[penalty].target > 0:  # lp
            panels.append(([("penalty_below", "lambda * mean (1 - n)^2 over norms n < 1")],
                           "diagnostic, not in the loss: part from norms below the target (GP would add it)"))
    panels.append(([("grad_norm_mean", "mean"), ("grad_norm_max", "max"), ("grad_norm_min", "min")],
                   "diagnostic: critic gradient norms"))
    panels.append(([("w1", "W1 estimate")], "W1 estimate (assignment)"))
    return panels


def plot_metrics(metrics_csv: str, path: str, penalty: str, initial_w1: float | None = None) -> str | None:
    """Curves of metrics.csv: losses, the penalty as the loss contains it, gradient norms, W1 (with
    the untrained generator's at iteration 0), and for one-sided penalties the part below the
    target as a diagnostic in its own panel (it is not in the loss)."""
    with open(metrics_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return None

    def column(name):
        xs, ys = [], []
        for row in rows:
            if row.get(name, "") not in ("", None):
                xs.append(int(row["iteration"]))
                ys.append(float(row[name]))
        return xs, ys

    panels = metric_panels(penalty)
    plt = _pyplot()
    ncols = 2
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(10, 3.5 * nrows), squeeze=False)
    for ax, (lines, title) in zip(axes.flat, panels):
        for name, label in lines:
            xs, ys = column(name)
            if name == "w1" and initial_w1 is not None:
                xs, ys = [0] + xs, [initial_w1] + ys
            if xs:
                ax.plot(xs, ys, label=label, marker="o" if name == "w1" else None, markersize=3)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("generator iteration")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

