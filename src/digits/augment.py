"""Training-time augmentation: the variation real pictures bring, on (B, 28, 28, 1) batches inside tf.data.

    batch(images, seed, **settings) -> images   (settings: the SETTINGS below, 0 = off)

Every draw comes from one stateless seed per batch (`make_tf_dataset` gives each batch its own),
so the same seed gives the same pictures and a run is reproducible. Labels are never touched:
each picture stays where it was in the batch. The transforms, in the order they are applied:

    shift, rotation, zoom  an affine move (pixels, degrees, fraction), as every recipe has had
    slant, aspect          handwriting leans (a shear: the top moves sideways, up to `slant` x height)
                           and is narrow or wide (width scaled by up to 1 +- `aspect`)
    elastic                Simard et al. (2003): a random displacement field smoothed by a Gaussian
                           (sigma 4 px), `elastic` = its RMS displacement in pixels
    (one bilinear resampling does all of the geometry above)
    stroke                 thinner or thicker strokes: grey erosion / dilation, blended for fractional
                           widths; up to `stroke` pixels wider, or half of that thinner
    broken                 the share of pictures whose strokes are cut by one or two thin gaps
                           (a dry pen, a scan of a fold)
    lowres                 the share of pictures drawn at 8-16 px and enlarged (a far-off photo, a fax)
    blur                   a Gaussian blur of up to `blur` px sigma (focus, motion)
    texture                uneven ink (pen pressure, pencil grain) and paper residue (noise),
                           strength 0..1
    then each picture's brightest ink is scaled back to 1, as `digits.images` draws what it reads

Outlier Exposure's non-digits go through the same transforms (they are part of the batch).
"""

from __future__ import annotations

import math

SETTINGS = ("shift", "rotation", "zoom", "slant", "aspect", "elastic", "stroke", "broken", "lowres", "blur",
            "texture")
ELASTIC_SIGMA = 4.0  # px: Simard et al.'s smoothing for 28x28 digits
FULL_INK = 0.3  # pictures whose brightest ink is above this are brightened back to full strength (1.0)
LOWRES = (8, 16)  # px: the digit's larger side when drawn small (MNIST draws it at 20 px in 28)


def _uniform(seed, count, low, high):
    import tensorflow as tf

    return tf.random.stateless_uniform([count], seed, low, high)


def _gaussian_kernel(sigma: float):
    import tensorflow as tf

    radius = max(1, int(math.ceil(3 * sigma)))
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / tf.reduce_sum(kernel)


def _smooth(images, sigma: float):
    """Separable Gaussian blur of a (B, H, W, C) batch (zero padding)."""
    import tensorflow as tf

    kernel = _gaussian_kernel(sigma)
    size, channels = int(kernel.shape[0]), int(images.shape[-1])
    rows = tf.tile(tf.reshape(kernel, [size, 1, 1, 1]), [1, 1, channels, 1])
    columns = tf.tile(tf.reshape(kernel, [1, size, 1, 1]), [1, 1, channels, 1])
    images = tf.nn.depthwise_conv2d(images, rows, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(images, columns, [1, 1, 1, 1], "SAME")


def _sample(images, source_x, source_y):
    """Bilinear sampling of (B, H, W, 1) at per-pixel source coordinates (B, H, W); outside is black (0)."""
    import tensorflow as tf

    height, width = tf.shape(images)[1], tf.shape(images)[2]
    padded = tf.pad(images[..., 0], [[0, 0], [1, 1], [1, 1]])  # a black border: coordinates clip into it
    x0, y0 = tf.floor(source_x), tf.floor(source_y)
    wx, wy = source_x - x0, source_y - y0
    count = tf.shape(images)[0]
    batch = tf.broadcast_to(tf.reshape(tf.range(count), [-1, 1, 1]), tf.shape(source_x))

    def at(y, x):
        y = tf.clip_by_value(tf.cast(y, tf.int32) + 1, 0, height + 1)
        x = tf.clip_by_value(tf.cast(x, tf.int32) + 1, 0, width + 1)
        return tf.gather_nd(padded, tf.stack([batch, y, x], -1))

    top = at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx
    bottom = at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx
    return (top * (1 - wy) + bottom * wy)[..., None]


def _geometry(images, seeds, shift, rotation, zoom, slant, aspect, elastic):
    """Affine move, slant, aspect and elastic displacement in one bilinear resampling."""
    import tensorflow as tf

    count, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    angle = _uniform(seeds[0], count, -rotation, rotation) * (math.pi / 180.0)
    scale = _uniform(seeds[1], count, 1.0 - zoom, 1.0 + zoom)
    shift_x = _uniform(seeds[2], count, -shift, shift)
    shift_y = _uniform(seeds[3], count, -shift, shift)
    shear = _uniform(seeds[4], count, -slant, slant)
    stretch = _uniform(seeds[5], count, 1.0 - aspect, 1.0 + aspect)
    rows, columns = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32), indexing="ij")
    centre_y, centre_x = (height - 1) / 2, (width - 1) / 2
    x, y = (columns - centre_x)[None], (rows - centre_y)[None]  # output pixel, about the centre

    def per_image(value):
        return tf.reshape(value, [-1, 1, 1])

    # Output pixel -> source pixel: undo the shift, rotation and zoom, the width's stretch, then the slant
    # (a shear by `shear` x height: a pixel above the centre samples from further right, so the top leans).
    cos, sin = per_image(tf.cos(angle) / scale), per_image(tf.sin(angle) / scale)
    x, y = x - per_image(shift_x), y - per_image(shift_y)
    x, y = cos * x + sin * y, -sin * x + cos * y
    x = x / per_image(stretch)
    x = x + per_image(shear) * y
    if elastic:
        field = tf.random.stateless_uniform(tf.stack([count, height, width, 2]), seeds[6], -1.0, 1.0)
        field = _smooth(field, ELASTIC_SIGMA)
        field /= tf.sqrt(tf.reduce_mean(tf.square(field), axis=[1, 2, 3], keepdims=True)) + 1e-6
        field *= tf.reshape(_uniform(seeds[7], count, 0.0, elastic), [-1, 1, 1, 1])
        x, y = x + field[..., 0], y + field[..., 1]
    return _sample(images, x + centre_x, y + centre_y)


def _stroke(images, seed, stroke):
    """Per picture, strokes up to `stroke` px wider or `stroke / 2` px thinner (a 3x3 step is 2 px)."""
    import tensorflow as tf

    count = tf.shape(images)[0]
    change = tf.reshape(_uniform(seed, count, -stroke / 2, stroke), [-1, 1, 1, 1]) / 2  # in 3x3 steps
    wider = tf.nn.max_pool2d(images, 3, 1, "SAME")
    widest = tf.nn.max_pool2d(wider, 3, 1, "SAME")
    thinner = -tf.nn.max_pool2d(-images, 3, 1, "SAME")
    grown = tf.where(change <= 1, images + change * (wider - images), wider + (change - 1) * (widest - wider))
    return tf.where(change >= 0, grown, images - change * (thinner - images))


def _chosen(seed, count, share):
    """(B, 1, 1, 1) booleans: which pictures a transform with this `share` touches."""
    import tensorflow as tf

    return tf.reshape(_uniform(seed, count, 0.0, 1.0) < share, [-1, 1, 1, 1])


def _broken(images, seeds, share):
    """Cut the strokes of a `share` of pictures with one or two thin straight gaps across the middle."""
    import tensorflow as tf

    count, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    rows, columns = tf.meshgrid(tf.range(height, dtype=tf.float32) - (height - 1) / 2,
                                tf.range(width, dtype=tf.float32) - (width - 1) / 2, indexing="ij")
    keep = tf.ones_like(images)
    for index in range(2):
        angle = tf.reshape(_uniform(seeds[index], count, 0.0, math.pi), [-1, 1, 1])
        offset = tf.reshape(_uniform(seeds[index + 2], count, -6.0, 6.0), [-1, 1, 1])
        half = tf.reshape(_uniform(seeds[index + 4], count, 0.5, 1.2), [-1, 1, 1])
        distance = tf.abs(tf.cos(angle) * columns[None] + tf.sin(angle) * rows[None] - offset)
        gap = tf.clip_by_value(half + 0.5 - distance, 0.0, 1.0)[..., None]  # soft-edged: 1 inside the gap
        used = _chosen(seeds[6], count, 1.0) if index == 0 else _chosen(seeds[6], count, 0.5)
        keep *= 1.0 - tf.where(used, gap, 0.0)
    return tf.where(_chosen(seeds[7], count, share), images * keep, images)


def _lowres(images, seeds, share):
    """A `share` of pictures drawn with the digit LOWRES px tall (the whole batch at one size) and enlarged."""
    import tensorflow as tf

    height, width = images.shape[1], images.shape[2]
    digit = tf.random.stateless_uniform([], seeds[0], LOWRES[0], LOWRES[1] + 1, dtype=tf.int32)
    side = tf.cast(tf.round(tf.cast(digit, tf.float32) * height / 20.0), tf.int32)  # MNIST's digit is 20 of 28 px
    small = tf.image.resize(images, tf.stack([side, side]), method="area")
    large = tf.image.resize(small, [height, width], method="bilinear")
    return tf.where(_chosen(seeds[1], tf.shape(images)[0], share), large, images)


def _blur(images, seed, blur):
    """Per picture, a Gaussian blur of sigma up to `blur` px (a blend of the sharp and the fully blurred)."""
    import tensorflow as tf

    amount = tf.reshape(_uniform(seed, tf.shape(images)[0], 0.0, 1.0), [-1, 1, 1, 1])
    return images + amount * (_smooth(images, blur) - images)


def _texture(images, seeds, strength):
    """Uneven ink (smooth blotches of lighter ink) and paper residue (faint noise), up to `strength`."""
    import tensorflow as tf

    count, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    blotches = tf.random.stateless_uniform(tf.stack([count, 7, 7, 1]), seeds[0], 0.0, 1.0)
    blotches = tf.image.resize(blotches, [height, width], method="bilinear")
    fade = tf.reshape(_uniform(seeds[1], count, 0.0, strength * 0.6), [-1, 1, 1, 1])
    noise = tf.random.stateless_normal(tf.shape(images), seeds[2]) * tf.reshape(
        _uniform(seeds[3], count, 0.0, strength * 0.08), [-1, 1, 1, 1])
    return images * (1.0 - fade * blotches) + tf.abs(noise)


def batch(images, seed, shift: float = 0.0, rotation: float = 0.0, zoom: float = 0.0, slant: float = 0.0,
          aspect: float = 0.0, elastic: float = 0.0, stroke: float = 0.0, broken: float = 0.0, lowres: float = 0.0,
          blur: float = 0.0, texture: float = 0.0):
    """Augment a (B, H, W, 1) float batch (ink bright, 0..1) with the stateless `seed` (two int64); see the module doc.

    All settings 0 returns the batch unchanged.
    """
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 24)
    images = tf.convert_to_tensor(images, tf.float32)
    if any((shift, rotation, zoom, slant, aspect, elastic)):
        images = _geometry(images, seeds[0:8], shift, rotation, zoom, slant, aspect, elastic)
    if stroke:
        images = _stroke(images, seeds[8], stroke)
    if broken:
        images = _broken(images, seeds[9:17], broken)
    if lowres:
        images = _lowres(images, seeds[17:19], lowres)
    if blur:
        images = _blur(images, seeds[19], blur)
    if texture:
        images = _texture(images, seeds[20:24], texture)
    if any((stroke, broken, lowres, blur, texture)):  # the reading half draws ink at full strength: so do these
        peak = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
        images = images / tf.clip_by_value(peak, FULL_INK, 1.0)
    return tf.clip_by_value(images, 0.0, 1.0)
