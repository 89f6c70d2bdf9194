"""The shared blocks: shapes, projections, and the crop that restores odd sizes."""

import keras
import pytest

from keras_latent.models import blocks


@pytest.mark.parametrize("strides, filters", [(1, 8), (2, 8), (1, 3)])
def test_residual_block_shapes_and_projection(strides, filters):
    x = keras.Input((9, 9, 3))
    y = blocks.residual_block(x, filters, 3, strides=strides, batch_norm=True, name="r")
    assert tuple(y.shape) == (None, -(-9 // strides), -(-9 // strides), filters)
    model = keras.Model(x, y)
    has_projection = any(layer.name == "r_proj" for layer in model.layers)
    assert has_projection == (strides != 1 or filters != 3)


def test_upsample_and_crop_restore_odd_sizes():
    x = keras.Input((4, 4, 8))
    y = blocks.upsample_block(x, 5, 3, strides=2, name="up")  # 8x8
    y = blocks.crop_to(y, (7, 7), name="crop")
    assert tuple(y.shape) == (None, 7, 7, 5)
    y2 = blocks.upsample_block(x, 5, 3, strides=2, upsampling="resize", name="up2")
    assert tuple(y2.shape) == (None, 8, 8, 5)
