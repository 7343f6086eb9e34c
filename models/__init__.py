"""kgraph.applications (Keras' `keras.applications`): reference architectures with Keras
Applications' layer names and parameter counts, so Keras weight files load into them.

Nothing is downloaded: `weights="imagenet"` reads the Keras weight file from
`$KGRAPH_HOME/models/` and names the exact file when it is missing. Each family module
(`resnet`, `resnet50`, `resnet_v2`, `inception_v3`, `mobilenet_v2`, `vgg16`, `efficientnet`,
`xception`) also has `preprocess_input` and `decode_predictions`.

One difference from Keras: without `input_shape` the models are built for 224x224 images
even when `include_top=False` (Keras leaves the size open there); kgraph's pooling and strided
'same' convolutions need a static image size, so pass `input_shape` for other sizes.
"""
from kgraph.applications import (efficientnet, imagenet_utils, inception_v3,  # noqa: F401
                                 mobilenet_v2, resnet, resnet_v2, vgg16, xception)
from kgraph.applications import resnet as resnet50  # noqa: F401  (Keras' module alias)
from kgraph.applications.efficientnet import EfficientNetB0  # noqa: F401
from kgraph.applications.inception_v3 import InceptionV3  # noqa: F401
from kgraph.applications.mlp import MLP  # noqa: F401
from kgraph.applications.mobilenet_v2 import MobileNetV2  # noqa: F401
from kgraph.applications.resnet import ResNet50, ResNet101, ResNet152  # noqa: F401
from kgraph.applications.resnet_v2 import ResNet50V2, ResNet101V2, ResNet152V2  # noqa: F401
from kgraph.applications.vgg16 import VGG16  # noqa: F401
from kgraph.applications.xception import Xception  # noqa: F401
