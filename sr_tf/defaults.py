"""Defaults shared by the library and the CLI, one value each, in a module without TensorFlow so the
CLI's `--help` can show them before TensorFlow loads.

Tiling: every path that runs a model on whole images (`Upscaler`, the SavedModel's tiler, batch,
video, the server, `sr-tf evaluate`) gives a tile `TILE_PAD` pixels of context on each side. The
CLI verbs tile images larger than `TILE` input pixels into `TILE` x `TILE` tiles, so memory stays
bounded on any image. Measured on realesrgan-x4plus (the largest catalogue model), peak memory of
`sr-tf upscale`: a 256x256 input 1.8 GB, 512x512 4.5 GB; a whole 1600x1200 photo, extrapolated,
about 27 GB. 256 keeps one image under 2 GB, which matters where several run at once (server
requests, batch workers); it costs 27% extra work per tile for the 16-pixel pad, against 13% at
512. Images up to `TILE` pixels run whole, exactly; tiled outputs stay >= 50 dB PSNR from untiled
ones.

`sr-tf evaluate` alone tiles above `EVALUATE_TILE` = 512, a stated exception: papers score whole
images, and tiling moves the score (256-pixel tiles moved realesrgan-x4plus's mean PSNR-Y on the
README's three validation photos from 36.61 to 36.55 dB). At 512 the usual test sets (DIV2K x4 LR
at most 510 pixels, Set5, Set14, BSD100, Urban100 and Manga109 x4) run whole.
"""

TILE = 256  # tile core size of the CLI verbs, in input pixels
TILE_PAD = 16  # context on each side of a tile, in input pixels, everywhere
EVALUATE_TILE = 512  # `sr-tf evaluate`'s tile core size
