"""Parse the official OccWorld ``model`` dicts into typed configs.

The dicts of ``config/train_vqvae.py`` (``type='VAERes2D'``) and ``config/train_occworld.py`` /
``config/occworld.py`` (``type='TransVQVAE'``) map onto :class:`VAEConfig` /
:class:`WorldModelConfig`.  Missing keys take the official constructor defaults; an unknown key,
a wrong ``type``, or a value selecting a code path we do not implement (the KL branch, learnable
queries, the ablation switches, the broken ``delta_input`` rollout) is an error naming the key.
The official classes silently ignore unknown keys (``**ignore_kwargs``); we do not.

The architecture is described once, by the typed configs: where an official constructor default
equals ours (our defaults are the released model), a missing key takes the typed config's default;
only the official defaults that differ are stated here (:data:`OFFICIAL_DEFAULTS`).
"""

from __future__ import annotations

from typing import Any, Mapping

from vlwm.models.config import PoseConfig, TransformerConfig, VAEConfig, WorldModelConfig

_ENCODER_KEYS = {"type", "ch", "out_ch", "ch_mult", "num_res_blocks", "attn_resolutions", "dropout",
                 "resamp_with_conv", "in_channels", "resolution", "z_channels", "double_z"}
_DECODER_KEYS = (_ENCODER_KEYS - {"double_z"}) | {"give_pre_end"}
_VQ_KEYS = {"type", "n_e", "e_dim", "beta", "z_channels", "remap", "unknown_index", "sane_index_shape", "legacy",
            "use_voxel"}
_VAE_KEYS = {"type", "encoder_cfg", "decoder_cfg", "num_classes", "expansion", "vqvae_cfg", "init_cfg"}
_WORLD_KEYS = {"type", "vae", "transformer", "num_frames", "offset", "pose_encoder", "pose_decoder", "pose_actor",
               "give_hiddens", "delta_input", "without_all", "init_cfg"}
_TRANSFORMER_KEYS = {"type", "num_tokens", "num_frames", "num_layers", "img_shape", "pose_shape", "tpe_dim",
                     "output_channel", "channels", "ffn_dims", "temporal_attn_layers", "pose_attn_layers",
                     "num_heads", "pose_output_channel", "conditional", "tokens_untouched", "add_aggregate",
                     "learnable_queries", "without_multiscale", "without_spatial_attn", "without_pose_spatial_attn",
                     "without_pose_temporal_attn", "without_temporal_attn", "init_cfg"}
_POSE_ENCODER_KEYS = {"type", "in_channels", "out_channels", "num_layers", "num_modes", "num_fut_ts", "init_cfg"}
_POSE_DECODER_KEYS = {"type", "in_channels", "num_layers", "num_modes", "num_fut_ts", "init_cfg"}

OFFICIAL_DEFAULTS: dict[str, dict[str, Any]] = {
    "Encoder2D": {"ch_mult": (1, 2, 4, 8)},
    "PlanUAutoRegTransformer": {"tpe_dim": 10, "channels": (1, 2, 3), "temporal_attn_layers": 1,
                                "pose_attn_layers": 1, "output_channel": 1024},
    "TransVQVAE": {"num_frames": 10},
}
"""Constructor defaults of the official classes that differ from our typed configs' defaults (every
official config file sets these keys; a dict that leaves one out gets the official class's value)."""


class _Section:
    """One official sub-dict: checked keys, defaults, required values, readable errors."""

    def __init__(self, cfg: Mapping[str, Any], where: str, allowed: set[str], type_name: str):
        if not isinstance(cfg, Mapping):
            raise TypeError(f"{where} must be a dict, got {type(cfg).__name__}")
        unknown = sorted(set(cfg) - allowed)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(allowed)}")
        if cfg.get("type", type_name) != type_name:
            raise ValueError(f"{where}.type = {cfg['type']!r}, expected {type_name!r}")
        self.cfg, self.where = cfg, where

    def get(self, key: str, default: Any = ...) -> Any:
        if key in self.cfg:
            return self.cfg[key]
        if default is ...:
            raise ValueError(f"{self.where}: required key '{key}' is missing")
        return default

    def expect(self, key: str, default: Any, supported: Any, why: str) -> None:
        value = self.get(key, default)
        if value != supported:
            raise ValueError(f"{self.where}.{key} = {value!r} is not supported ({why}); use {supported!r}")


def _same(a: _Section, b: _Section, key: str, default: Any = ...) -> Any:
    va, vb = a.get(key, default), b.get(key, default)
    if _tuple(va) != _tuple(vb):
        raise ValueError(f"{a.where}.{key} = {va!r} but {b.where}.{key} = {vb!r}: encoder and decoder must agree")
    return va


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def vae_config_from_official(model: Mapping[str, Any], where: str = "model", **execution) -> VAEConfig:
    """:class:`VAEConfig` of an official ``VAERes2D`` dict (``execution``: attention, use_checkpoint,
    channels_last)."""
    top = _Section(model, where, _VAE_KEYS, "VAERes2D")
    top.expect("init_cfg", None, None, "weights come from checkpoints")
    if top.get("vqvae_cfg", None) is None:
        raise ValueError(f"{where}.vqvae_cfg is missing: the KL (sample_z) branch of VAERes2D is not implemented")
    enc = _Section(top.get("encoder_cfg"), f"{where}.encoder_cfg", _ENCODER_KEYS, "Encoder2D")
    dec = _Section(top.get("decoder_cfg"), f"{where}.decoder_cfg", _DECODER_KEYS, "Decoder2D")
    vq = _Section(top.get("vqvae_cfg"), f"{where}.vqvae_cfg", _VQ_KEYS, "VectorQuantizer")
    enc.expect("double_z", True, False, "a VQ-VAE encodes z_channels, not a KL mean/variance pair")
    for section in (enc, dec):
        section.expect("resamp_with_conv", True, True, "only convolutional resampling is implemented")
    dec.expect("give_pre_end", False, False, "the decoder must end with conv_out")
    vq.expect("use_voxel", True, False, "the 2D tokenizer quantises 2D latents")
    vq.expect("legacy", True, True, "the official loss uses the legacy beta placement")
    vq.expect("remap", None, None, "index remapping is not implemented")
    expansion = top.get("expansion", VAEConfig.expansion)
    in_channels = enc.get("in_channels")
    if dec.get("out_ch") != in_channels:
        raise ValueError(f"{dec.where}.out_ch = {dec.get('out_ch')} must equal {enc.where}.in_channels = "
                         f"{in_channels} (both are depth x expansion)")
    if in_channels % expansion:
        raise ValueError(f"{enc.where}.in_channels = {in_channels} is not depth x expansion ({expansion})")
    z = _same(enc, dec, "z_channels")
    if vq.get("z_channels") != z:
        raise ValueError(f"{vq.where}.z_channels = {vq.get('z_channels')} must equal the encoder z_channels ({z})")
    return VAEConfig(
        num_classes=top.get("num_classes", VAEConfig.num_classes), expansion=expansion,
        depth=in_channels // expansion,
        ch=_same(enc, dec, "ch"), ch_mult=tuple(_same(enc, dec, "ch_mult", OFFICIAL_DEFAULTS["Encoder2D"]["ch_mult"])),
        num_res_blocks=_same(enc, dec, "num_res_blocks"),
        attn_resolutions=tuple(_same(enc, dec, "attn_resolutions")), resolution=_same(enc, dec, "resolution"),
        z_channels=z, codebook_size=vq.get("n_e"), code_dim=vq.get("e_dim"), beta=float(vq.get("beta")),
        dropout=float(_same(enc, dec, "dropout", VAEConfig.dropout)), **execution)


def world_model_config_from_official(model: Mapping[str, Any], where: str = "model", **execution) -> WorldModelConfig:
    """:class:`WorldModelConfig` of an official ``TransVQVAE`` dict (``execution``: attention,
    use_checkpoint for both parts, channels_last for the VAE)."""
    top = _Section(model, where, _WORLD_KEYS, "TransVQVAE")
    top.expect("init_cfg", None, None, "weights come from checkpoints")
    top.expect("pose_actor", None, None, "the pose actor is not part of the released model")
    top.expect("give_hiddens", False, False, "it only feeds the broken transformer(z, hidden=...) paths")
    top.expect("delta_input", False, False, "the official rollout with delta_input crashes (TransVQVAE.py:247)")
    top.expect("without_all", False, False, "it is an evaluation ablation, not a model")
    for key in ("pose_encoder", "pose_decoder"):
        if top.get(key, None) is None:
            raise ValueError(f"{where}.{key} is missing: only the *_with_plan paths of TransVQVAE work")
    tr_execution = {k: v for k, v in execution.items() if k != "channels_last"}
    vae = vae_config_from_official(top.get("vae"), f"{where}.vae", **execution)

    tr = _Section(top.get("transformer"), f"{where}.transformer", _TRANSFORMER_KEYS, "PlanUAutoRegTransformer")
    tr.expect("init_cfg", None, None, "weights come from checkpoints")
    tr.expect("num_tokens", ..., 1, "one token per pixel and frame")
    tr.expect("learnable_queries", True, False, "all official configs use the tokens as queries")
    tr.expect("conditional", True, True, "queries carry the embedding of the frame they predict")
    for switch in ("tokens_untouched", "add_aggregate", "without_multiscale", "without_spatial_attn",
                   "without_pose_spatial_attn", "without_pose_temporal_attn", "without_temporal_attn"):
        tr.expect(switch, False, False, "ablation switches are not implemented")
    official = OFFICIAL_DEFAULTS["PlanUAutoRegTransformer"]
    output_channel = tr.get("output_channel", official["output_channel"])
    pose_output = tr.get("pose_output_channel", None)
    transformer = TransformerConfig(
        num_frames=tr.get("num_frames"), img_shape=tuple(tr.get("img_shape")),
        tpe_dim=tr.get("tpe_dim", official["tpe_dim"]), channels=tuple(tr.get("channels", official["channels"])),
        temporal_attn_layers=tr.get("temporal_attn_layers", official["temporal_attn_layers"]),
        pose_attn_layers=tr.get("pose_attn_layers", official["pose_attn_layers"]),
        num_heads=tr.get("num_heads", TransformerConfig.num_heads),
        output_channel=output_channel, pose_output_channel=output_channel if pose_output is None else pose_output,
        **tr_execution)
    num_frames = top.get("num_frames", OFFICIAL_DEFAULTS["TransVQVAE"]["num_frames"])
    if num_frames != transformer.num_frames:
        raise ValueError(f"{where}.num_frames = {num_frames} but {tr.where}.num_frames = {transformer.num_frames}; "
                         "the official forward asserts both")

    pe = _Section(top.get("pose_encoder"), f"{where}.pose_encoder", _POSE_ENCODER_KEYS, "PoseEncoder")
    pd = _Section(top.get("pose_decoder"), f"{where}.pose_decoder", _POSE_DECODER_KEYS, "PoseDecoder")
    for section in (pe, pd):
        section.expect("num_fut_ts", 1, 1, "one future step per frame")
        section.expect("init_cfg", None, None, "weights come from checkpoints")
    modes = pe.get("num_modes", PoseConfig.num_modes)
    if pd.get("num_modes", PoseConfig.num_modes) != modes:
        raise ValueError(f"{pe.where}.num_modes = {modes} but {pd.where}.num_modes = "
                         f"{pd.get('num_modes', PoseConfig.num_modes)}")
    if pe.get("in_channels") != PoseConfig.motion_dims + modes:
        raise ValueError(f"{pe.where}.in_channels = {pe.get('in_channels')}: official pose inputs are (dx, dy) + "
                         f"{modes} modes = {PoseConfig.motion_dims + modes}; for drone poses build from "
                         "WorldModelConfig with PoseConfig(motion_dims=4)")
    if pe.get("out_channels") != transformer.img_shape[0]:
        raise ValueError(f"{pe.where}.out_channels = {pe.get('out_channels')} must equal the token channels "
                         f"{transformer.img_shape[0]} (pose tokens enter the same attentions)")
    if pd.get("in_channels") != transformer.pose_output_channel:
        raise ValueError(f"{pd.where}.in_channels = {pd.get('in_channels')} must equal the transformer's "
                         f"pose_output_channel ({transformer.pose_output_channel})")
    pose = PoseConfig(num_modes=modes, encoder_layers=pe.get("num_layers", PoseConfig.encoder_layers),
                      decoder_layers=pd.get("num_layers", PoseConfig.decoder_layers))
    cfg = WorldModelConfig(vae=vae, transformer=transformer, pose=pose,
                           offset=top.get("offset", WorldModelConfig.offset))
    cfg.validate()
    return cfg
