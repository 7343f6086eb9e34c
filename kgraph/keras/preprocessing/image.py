"""`keras.preprocessing.image`: the image helpers under the module name older code imports
(`keras.preprocessing.image.array_to_img`); the same functions as `keras.utils`."""
from kgraph.keras.utils.image_utils import array_to_img, img_to_array, load_img, save_img

__all__ = ["array_to_img", "img_to_array", "load_img", "save_img"]
