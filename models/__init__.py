"""kgraph.applications (Keras' `keras.applications`): reference architectures with Keras
Applications' layer names and parameter counts, so Keras weight files load into them.

Nothing is downloaded: `weights="imagenet"` reads the Keras weight file from
`$KGRAPH_HOME/models/` and names the exact file when it is missing. Each family module
(`resnet`, `resnet50`, `resnet_v2`, `densenet`, `inception_v3`, `mobilenet_v2`, `vgg16`,
`vgg19`, `efficientnet`, `xception`) also has `preprocess_input` and `decode_predictions`.

Without `input_shape` and with `include_top=False`, ResNet, ResNetV2, DenseNet, VGG16 and
EfficientNet leave the image size open, as Keras does (each call runs at its own size). One
difference from Keras: MobileNetV2 and Xception are built for their default size there (224
or 299), since kgraph's strided 'same' convolutions and pooling need a static image size; pass
`input_shape` for other sizes. (InceptionV3's 'same' layers all have stride 1: it runs at any
size.)
"""
from kgraph.applications import (densenet, efficientnet, imagenet_utils,  # noqa: F401
                                 inception_v3, mobilenet_v2, resnet, resnet_v2, vgg16, vgg19,
                                 xception)
from kgraph.applications import resnet as resnet50  # noqa: F401  (Keras' module alias)
from kgraph.applications.densenet import DenseNet121, DenseNet169, DenseNet201  # noqa: F401
from kgraph.applications.efficientnet import EfficientNetB0  # noqa: F401
from kgraph.applications.inception_v3 import InceptionV3  # noqa: F401
from kgraph.applications.mlp import MLP  # noqa: F401
from kgraph.applications.mobilenet_v2 import MobileNetV2  # noqa: F401
from kgraph.applications.resnet import ResNet50, ResNet101, ResNet152  # noqa: F401
from kgraph.applications.resnet_v2 import ResNet50V2, ResNet101V2, ResNet152V2  # noqa: F401
from kgraph.applications.vgg16 import VGG16  # noqa: F401
from kgraph.applications.vgg19 import VGG19  # noqa: F401
from kgraph.applications.xception import Xception  # noqa: F401
