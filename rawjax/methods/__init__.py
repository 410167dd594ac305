"""The five papers, one package each, as plug-ins of the training engine.

  * `raw2raw_semi`: semi-supervised raw-to-raw mapping (U-Net pair; anchor,
    reconstruction and mapping losses) — method 'raw2raw_semi';
  * `cstpp`: unsupervised raw-to-raw mapping (Conformer-CSTPP generator in a
    CycleGAN) — methods 'cycle_gan' and 'cstpp_adapt';
  * `liteisp`: RAW-to-sRGB with misaligned supervision (LiteISPNet, GCM,
    flow alignment) — method 'liteisp';
  * `kpn`: the kernel-prediction ISP — method 'kpn_isp';
  * `semiisp`: semi-supervised ISP via one-to-many sRGB-to-RAW — method
    'semiisp'.

A package holds its paper's registration, objective (that paper's losses,
with its equation numbers), steps and tables, and imports only the engine
(`rawjax.train`), `rawjax.eval`, `rawjax.data`, `rawjax.models` and the core
— never another method package. Packages are imported on first use by
`rawjax.train.get_method(config.method)`.
"""
