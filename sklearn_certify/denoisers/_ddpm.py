"""One-shot denoising with a diffusers DDPM: one UNet call per image, no sampling loop."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sklearn_certify._validation import check_positive, check_scalar_int
from sklearn_certify.denoisers._base import check_data_range
from sklearn_certify.denoisers._schedule import timestep_for_sigma

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

__all__ = ["PROVENANCE_FILE", "DDPMDenoiser", "import_diffusers", "move_unet"]

#: File next to the weights that lists the content digests of the rows a denoiser was trained on.
PROVENANCE_FILE = "provenance.json"


def import_diffusers():
    """Import diffusers, with an error that says how to install it when it is missing."""
    try:
        import diffusers
    except ImportError as exc:  # pragma: no cover - diffusers is a dependency
        raise ImportError(
            "sklearn_certify.denoisers needs the 'diffusers' package: pip install diffusers"
        ) from exc
    return diffusers


def _pretrained_subfolder(path: Path, subfolder: str, config: str) -> str | None:
    """``subfolder`` in a pipeline layout (unet/, scheduler/), None in a flat layout."""
    if (path / subfolder / config).is_file():
        return subfolder
    if (path / config).is_file():
        return None
    raise FileNotFoundError(
        f"{path} holds neither {subfolder}/{config} (the layout save_pretrained writes) nor "
        f"{config} (the flat layout of e.g. google/ddpm-cifar10-32)."
    )


def move_unet(unet, device):
    """``unet.to(device)``, with an error naming ``device`` when this torch cannot use it."""
    try:
        return unet.to(device)
    except (AssertionError, RuntimeError) as exc:  # e.g. "Torch not compiled with CUDA enabled"
        raise ValueError(
            f"device={device!r} cannot be used by this torch build on this machine ({exc}). "
            "Use device=None or 'cpu', or install a torch build for that device (for CUDA, "
            "torch.cuda.is_available() must be True)."
        ) from exc


class DDPMDenoiser:
    """Denoise noisy images in one step with the noise predictor of a DDPM.

    For Gaussian noise of standard deviation ``sigma`` on images in [0, 1], the denoiser
    picks the timestep ``t* = timestep_for_sigma(scheduler.alphas_cumprod, sigma)`` whose
    noise matches, brings the noisy image onto the diffusion's scale *without adding noise*,
    ``x_t = sqrt(abar) * (2 * x_noisy - 1)`` with ``abar = alphas_cumprod[t*]``, asks the UNet
    for the noise, ``eps = unet(x_t, t*).sample``, and returns the implied clean image
    ``x0 = (x_t - sqrt(1 - abar) * eps) / sqrt(abar)``, clipped to [-1, 1] and mapped back to
    [0, 1] as ``(x0 + 1) / 2``. ``x_t`` is a sample of the diffusion at ``t*`` whose noise has
    standard deviation ``sqrt((1 - abar) / abar) / 2 >= sigma`` on the [0, 1] scale, with
    equality up to the schedule's step; the result is deterministic (no sampling noise), so
    denoising the same noisy copy twice gives the same images.

    Parameters
    ----------
    unet : diffusers.UNet2DModel
        Noise predictor (``prediction_type="epsilon"``) with as many output as input
        channels. It is put in eval mode and, when ``device`` is given, moved there.
    scheduler : diffusers.DDPMScheduler
        The schedule the UNet was trained with; any object with ``alphas_cumprod`` (and
        optionally ``config.prediction_type``) works.
    image_shape : tuple of int, default=None
        ``(channels, height, width)`` of one image, used to reshape flat rows ``(n, d)``.
        ``None`` means ``(in_channels, sample_size, sample_size)`` from the UNet's config.
    batch_size : int, default=256
        Images per UNet call.
    device : str or torch.device, default=None
        Where the UNet runs (``"cpu"``, ``"cuda"``, ...). ``None`` leaves it where it is.
    training_digests : array of bytes of shape (n_rows,), default=None
        Content digests (:func:`~sklearn_certify.partition.row_digests`) of the rows the
        model was trained on, when known; :func:`check_trusted_denoiser` compares them with
        the data being certified. :func:`train_ddpm_denoiser` and :meth:`from_pretrained`
        fill it in.

    Attributes
    ----------
    unet, scheduler, image_shape, batch_size, training_digests
        As given (``image_shape`` resolved).
    data_range : tuple of float
        ``(0.0, 1.0)``: the range of the clean data, which the DDPM maps to its [-1, 1].
        :meth:`denoise` refuses noisy input too far outside it, and
        :class:`~sklearn_certify.DenoisedSmoothingClassifier` training rows outside it.

    See Also
    --------
    load_bundled : The trained denoiser for sklearn's 8x8 digits.
    train_ddpm_denoiser : Train one on trusted data.

    Notes
    -----
    ``denoise`` takes numpy arrays or torch tensors and returns the same kind: a numpy array
    of the input's floating dtype, or a tensor of the input's dtype on the input's device.
    The UNet runs on its own device in its own dtype under ``torch.no_grad()`` (not inference
    mode, so a tensor result can feed a model that is trained afterwards); batches are moved
    there and back.

    Examples
    --------
    A tiny untrained UNet shows the mechanics (:func:`load_bundled` gives a trained one):

    >>> import numpy as np
    >>> import torch
    >>> from diffusers import DDPMScheduler, UNet2DModel
    >>> from sklearn_certify.denoisers import DDPMDenoiser
    >>> _ = torch.manual_seed(0)
    >>> unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1,
    ...                    block_out_channels=(8, 16), norm_num_groups=4, layers_per_block=1,
    ...                    down_block_types=("DownBlock2D", "DownBlock2D"),
    ...                    up_block_types=("UpBlock2D", "UpBlock2D"))
    >>> denoiser = DDPMDenoiser(unet, DDPMScheduler())
    >>> X_noisy = np.random.default_rng(0).normal(0.5, 0.25, size=(3, 64))
    >>> X = denoiser.denoise(X_noisy, sigma=0.25)
    >>> X.shape, X.dtype, bool(X.min() >= 0 and X.max() <= 1)
    ((3, 64), dtype('float64'), True)
    """

    data_range = (0.0, 1.0)

    def __init__(
        self,
        unet,
        scheduler,
        *,
        image_shape: tuple[int, int, int] | None = None,
        batch_size: int = 256,
        device: str | torch.device | None = None,
        training_digests: np.ndarray | None = None,
    ) -> None:
        import torch

        if not isinstance(unet, torch.nn.Module) or not hasattr(unet, "config"):
            raise TypeError(f"unet must be a diffusers UNet2DModel, got {type(unet).__name__}.")
        config = unet.config
        if config.out_channels != config.in_channels:
            raise ValueError(
                "unet must predict the noise of every input channel (out_channels == "
                f"in_channels), got in_channels={config.in_channels}, "
                f"out_channels={config.out_channels}."
            )
        if not hasattr(scheduler, "alphas_cumprod"):
            raise TypeError(
                "scheduler must have alphas_cumprod (e.g. a diffusers DDPMScheduler), got "
                f"{type(scheduler).__name__}."
            )
        prediction = getattr(getattr(scheduler, "config", None), "prediction_type", "epsilon")
        if prediction != "epsilon":
            raise ValueError(
                "the one-shot step needs a noise-predicting model; scheduler has "
                f"prediction_type={prediction!r}, expected 'epsilon'."
            )
        self.image_shape = self._resolve_image_shape(image_shape, config)
        self.batch_size = check_scalar_int("batch_size", batch_size, min_value=1)
        self.scheduler = scheduler
        self.unet = (unet if device is None else move_unet(unet, device)).eval()
        self._alphas_cumprod = np.asarray(
            torch.as_tensor(scheduler.alphas_cumprod).detach().cpu(), dtype=np.float64
        )
        self.training_digests = (
            None if training_digests is None else np.asarray(training_digests, dtype="S32")
        )

    @staticmethod
    def _resolve_image_shape(image_shape, config) -> tuple[int, int, int]:
        if image_shape is None:
            size = config.sample_size
            height, width = (size, size) if isinstance(size, int) else tuple(size)
            return (int(config.in_channels), int(height), int(width))
        shape = tuple(image_shape)
        if len(shape) != 3 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in shape):
            raise ValueError(
                f"image_shape must be (channels, height, width) of positive ints, got "
                f"{image_shape!r}."
            )
        if shape[0] != config.in_channels:
            raise ValueError(
                f"image_shape has {shape[0]} channels but the unet takes {config.in_channels}."
            )
        return tuple(int(v) for v in shape)

    @property
    def device(self) -> torch.device:
        """The device the UNet's parameters live on."""
        return next(self.unet.parameters()).device

    def timestep(self, sigma: float) -> int:
        """The timestep ``t*`` used for noise level ``sigma`` (see :func:`timestep_for_sigma`).

        Parameters
        ----------
        sigma : float
            Noise standard deviation on [0, 1] data.

        Returns
        -------
        int
        """
        return timestep_for_sigma(self._alphas_cumprod, sigma)

    def _check_images(self, X: torch.Tensor) -> tuple[int, ...]:
        """The (n, C, H, W) shape the UNet sees for input ``X``."""
        if X.ndim == 2:
            if X.shape[1] != math.prod(self.image_shape):
                raise ValueError(
                    f"X_noisy has rows of {X.shape[1]} values, but image_shape="
                    f"{self.image_shape} needs {math.prod(self.image_shape)}; pass images of "
                    "shape (n, C, H, W) or set image_shape."
                )
            return (X.shape[0], *self.image_shape)
        if X.ndim == 4:
            channels = self.unet.config.in_channels
            factor = 2 ** (len(self.unet.config.block_out_channels) - 1)
            if X.shape[1] != channels:
                raise ValueError(f"X_noisy has {X.shape[1]} channels, the unet takes {channels}.")
            if X.shape[2] % factor or X.shape[3] % factor:
                raise ValueError(
                    f"X_noisy images are {X.shape[2]}x{X.shape[3]}; this unet downsamples by "
                    f"{factor} and needs height and width divisible by it."
                )
            return tuple(X.shape)
        raise ValueError(
            "X_noisy must be rows of shape (n, d) or images of shape (n, C, H, W), got shape "
            f"{tuple(X.shape)}."
        )

    def denoise(self, X_noisy, sigma: float):
        """Denoise images that carry Gaussian noise of standard deviation ``sigma``.

        Parameters
        ----------
        X_noisy : ndarray or torch.Tensor of shape (n, d) or (n, C, H, W)
            Noisy images on the [0, 1] scale (values outside [0, 1] are expected, up to
            ``10 * sigma`` beyond it; data on another scale, such as 0..16 pixels, is
            refused): flat rows with ``d = prod(image_shape)`` or channel-first images.
        sigma : float
            Standard deviation of the noise on the [0, 1] scale.

        Returns
        -------
        ndarray or torch.Tensor
            The denoised images, same shape, kind, dtype (and device, for a tensor) as
            ``X_noisy``, with values in [0, 1].
        """
        import torch

        sigma = check_positive("sigma", sigma)
        is_tensor = isinstance(X_noisy, torch.Tensor)
        X = X_noisy if is_tensor else np.asarray(X_noisy)
        if not (X.dtype.is_floating_point if is_tensor else np.issubdtype(X.dtype, np.floating)):
            raise TypeError(f"X_noisy must hold floating-point values, got dtype {X.dtype}.")
        X = X if is_tensor else torch.from_numpy(X)
        images_shape = self._check_images(X)
        if not bool(torch.isfinite(X).all()):
            raise ValueError("X_noisy contains NaN or infinite values.")
        check_data_range(self, X, sigma=sigma, name="X_noisy")

        t_star = self.timestep(sigma)
        abar = self._alphas_cumprod[t_star]
        scale, noise_scale = math.sqrt(abar), math.sqrt(1.0 - abar)
        device, dtype = self.device, self.unet.dtype
        out = torch.empty_like(X)
        with torch.no_grad():
            for lo in range(0, X.shape[0], self.batch_size):
                batch = X[lo : lo + self.batch_size]
                x_t = batch.to(device=device, dtype=dtype).reshape(-1, *images_shape[1:])
                x_t = scale * (2.0 * x_t - 1.0)
                eps = self.unet(x_t, t_star).sample
                x0 = ((x_t - noise_scale * eps) / scale).clamp_(-1.0, 1.0)
                out[lo : lo + batch.shape[0]] = ((x0 + 1.0) / 2.0).reshape(batch.shape)
        return out if is_tensor else out.numpy()

    def save_pretrained(self, path, *, provenance: dict[str, Any] | None = None) -> None:
        """Save the UNet and scheduler with diffusers, plus the training rows' digests.

        ``path`` gets ``model_index.json``, ``unet/`` and ``scheduler/`` (the layout
        ``diffusers.DDPMPipeline.from_pretrained`` reads; weights as safetensors) and, when
        ``training_digests`` or ``provenance`` is given, ``provenance.json``.

        Parameters
        ----------
        path : str or os.PathLike
            Directory to write (created if missing).
        provenance : dict, default=None
            JSON-serializable notes on how the model was made (data, recipe, versions),
            stored in ``provenance.json`` next to the row digests.
        """
        pipeline = import_diffusers().DDPMPipeline(unet=self.unet, scheduler=self.scheduler)
        pipeline.save_pretrained(path, safe_serialization=True)
        record = dict(provenance or {})
        if self.training_digests is not None:
            record["row_digests_sha256"] = [d.hex() for d in self.training_digests]
        if record:
            text = json.dumps(record, indent=1) + "\n"
            (Path(path) / PROVENANCE_FILE).write_text(text, encoding="utf-8")

    @classmethod
    def from_pretrained(
        cls,
        path,
        *,
        image_shape: tuple[int, int, int] | None = None,
        batch_size: int = 256,
        device: str | torch.device | None = None,
    ) -> DDPMDenoiser:
        """Load a DDPM from a local directory; nothing is downloaded.

        The directory holds either the layout :meth:`save_pretrained` and
        ``DDPMPipeline.save_pretrained`` write (``unet/`` and ``scheduler/`` subfolders) or
        the flat layout of the Hugging Face DDPM checkpoints (``config.json``, the weights and
        ``scheduler_config.json`` side by side). They are read with
        ``UNet2DModel.from_pretrained`` and ``DDPMScheduler.from_pretrained`` with
        ``local_files_only=True``. A ``provenance.json`` next to them fills in
        ``training_digests``.

        To use a published checkpoint, download it once on a machine with internet, e.g.
        ``huggingface_hub.snapshot_download("google/ddpm-cifar10-32",
        local_dir="ddpm-cifar10-32")``, or ``DDPMPipeline.from_pretrained(
        "google/ddpm-cifar10-32").save_pretrained("ddpm-cifar10-32")``, and copy the folder.

        Parameters
        ----------
        path : str or os.PathLike
            The local directory.
        image_shape, batch_size, device
            As in :class:`DDPMDenoiser`.

        Returns
        -------
        DDPMDenoiser

        Examples
        --------
        >>> from sklearn_certify.denoisers import DDPMDenoiser, bundled_path
        >>> denoiser = DDPMDenoiser.from_pretrained(bundled_path("digits"))
        >>> denoiser.image_shape, denoiser.timestep(0.25)
        ((1, 8, 8), 145)
        """
        diffusers = import_diffusers()
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(
                f"path={str(path)!r} is not a local directory. Download a checkpoint once "
                "where there is internet (huggingface_hub.snapshot_download(repo_id, "
                "local_dir=...)) and pass that folder."
            )
        unet = diffusers.UNet2DModel.from_pretrained(
            path,
            subfolder=_pretrained_subfolder(path, "unet", "config.json"),
            local_files_only=True,
            low_cpu_mem_usage=False,  # the default wants the accelerate package, and says so
        )
        scheduler = diffusers.DDPMScheduler.from_pretrained(
            path,
            subfolder=_pretrained_subfolder(path, "scheduler", "scheduler_config.json"),
            local_files_only=True,
        )
        digests = None
        if (path / PROVENANCE_FILE).is_file():
            record = json.loads((path / PROVENANCE_FILE).read_text(encoding="utf-8"))
            if "row_digests_sha256" in record:
                digests = np.array(
                    [bytes.fromhex(d) for d in record["row_digests_sha256"]], dtype="S32"
                )
        return cls(
            unet,
            scheduler,
            image_shape=image_shape,
            batch_size=batch_size,
            device=device,
            training_digests=digests,
        )

    def __repr__(self) -> str:
        return (
            f"DDPMDenoiser(unet=UNet2DModel(in_channels={self.unet.config.in_channels}, "
            f"sample_size={self.unet.config.sample_size}), image_shape={self.image_shape}, "
            f"batch_size={self.batch_size}, device='{self.device}')"
        )
