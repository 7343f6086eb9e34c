"""keras.io example "Image Captioning" (examples/vision/image_captioning.py).

The stored source (TensorFlow-era: `import tensorflow as tf; from tensorflow import keras;
from tensorflow.keras import layers; from tensorflow.keras.applications import efficientnet;
from tensorflow.keras.layers import TextVectorization`) with those imports swapped for
kgraph, as written: `load_captions_data` (the token file's tab-separated `name#n` lines,
captions of 5 to SEQ_LENGTH tokens, images with a caption out of range dropped),
`train_val_split`, a `TextVectorization` whose `custom_standardization` is
`tf.strings.lower` + `tf.strings.regex_replace` (punctuation but `<` and `>` stripped), the
`tf.data` pipeline mapping `decode_and_resize` (`tf.io.read_file`, `tf.image.decode_jpeg`,
`tf.image.resize`, `tf.image.convert_image_dtype`) and the vectorization of each image's five
captions, an augmentation Sequential (RandomFlip/RandomRotation/RandomContrast), a frozen
`EfficientNetB0` feature extractor reshaped to `(-1, channels)`, the Transformer encoder and
decoder blocks (`PositionalEmbedding` with `compute_mask`, the causal mask from
`tf.shape(inputs)` tiled by `tf.concat([tf.expand_dims(batch_size, -1), tf.constant([1, 1])])`,
combined with the padding mask by `tf.minimum`), the `ImageCaptioningModel` whose `train_step`
takes one `tf.GradientTape` step per caption and whose masked loss/accuracy use
`self.loss` (`SparseCategoricalCrossentropy(reduction="none")`) and
`tf.math.logical_and`, the warm-up `LRSchedule` (`tf.cond` on the step), `EarlyStopping
(restore_best_weights=True)` on validation, and `generate_caption`'s greedy decoding with
eager calls of the CNN, encoder and decoder (`mask=` given) and `np.argmax` over the
vocabulary.

Changes: the Flickr8k download is replaced by 10 generated JPEGs and a generated
`Flickr8k.token.txt` (one image with a too-short caption, dropped by the example's own
filter); EfficientNetB0's `weights="imagenet"` by `None`. Sizes: 299x299 -> 32x32 images
(a 1x1 feature map), VOCAB_SIZE 10000 -> 16 (the generated text has more words),
SEQ_LENGTH 25 -> 8, EMBED_DIM/FF_DIM 512 -> 16, BATCH_SIZE 64 -> 4, EPOCHS 30 -> 1 (so the
schedule's warm-up is `2 // 15 = 0` steps: its division by zero is never selected, as in
TensorFlow); plots left out. Checked: the token file's filtering, the
vectorized captions start with `<start>` and pad with 0, the frozen CNN's weights stay as they
were while the encoder's and decoder's move, the schedule's warm-up rates, the decoded caption
is made of vocabulary words. Marked slow (an EfficientNetB0 and five taped caption steps in
one train step, ~6 s).
"""
import os

import numpy as np
import pytest

WORDS = "a dog cat runs sits on the grass red ball man woman with jumps water".split()


def _flickr8k(images_path, n_images=10, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    os.makedirs(images_path)
    lines = []
    for i in range(n_images):
        name = f"{1000 + i}_img.jpg"
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
            os.path.join(images_path, name))
        for n in range(5):
            length = 2 if (i == 3 and n == 2) else int(rng.integers(4, 6))  # 2: too short
            words = list(rng.choice(WORDS, length))
            words[0] = words[0].capitalize()
            lines.append(f"{name}#{n}\t{' '.join(words)} .")
    with open("Flickr8k.token.txt", "w") as handle:
        handle.write("\n".join(lines) + "\n")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
def test_image_captioning(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    monkeypatch.chdir(tmp_path)
    import re

    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers
    from kgraph.keras.applications import efficientnet
    from kgraph.keras.layers import TextVectorization

    seed = 111
    np.random.seed(seed)
    tf.random.set_seed(seed)

    IMAGES_PATH = "Flicker8k_Dataset"
    _flickr8k(IMAGES_PATH)
    IMAGE_SIZE = (32, 32)
    VOCAB_SIZE = 16  # below the generated vocabulary, as 10000 is below Flickr8k's
    SEQ_LENGTH = 8
    EMBED_DIM = 16
    FF_DIM = 16
    BATCH_SIZE = 4
    EPOCHS = 1
    AUTOTUNE = tf.data.AUTOTUNE

    def load_captions_data(filename):
        with open(filename) as caption_file:
            caption_data = caption_file.readlines()
            caption_mapping = {}
            text_data = []
            images_to_skip = set()

            for line in caption_data:
                line = line.rstrip("\n")
                img_name, caption = line.split("\t")
                img_name = img_name.split("#")[0]
                img_name = os.path.join(IMAGES_PATH, img_name.strip())
                tokens = caption.strip().split()

                if len(tokens) < 5 or len(tokens) > SEQ_LENGTH:
                    images_to_skip.add(img_name)
                    continue

                if img_name.endswith("jpg") and img_name not in images_to_skip:
                    caption = "<start> " + caption.strip() + " <end>"
                    text_data.append(caption)

                    if img_name in caption_mapping:
                        caption_mapping[img_name].append(caption)
                    else:
                        caption_mapping[img_name] = [caption]

            for img_name in images_to_skip:
                if img_name in caption_mapping:
                    del caption_mapping[img_name]

            return caption_mapping, text_data

    def train_val_split(caption_data, train_size=0.8, shuffle=True):
        all_images = list(caption_data.keys())
        if shuffle:
            np.random.shuffle(all_images)
        train_size = int(len(caption_data) * train_size)
        training_data = {
            img_name: caption_data[img_name] for img_name in all_images[:train_size]
        }
        validation_data = {
            img_name: caption_data[img_name] for img_name in all_images[train_size:]
        }
        return training_data, validation_data

    captions_mapping, text_data = load_captions_data("Flickr8k.token.txt")
    train_data, valid_data = train_val_split(captions_mapping)
    # image 3 is dropped; its two captions read before the short one stay in text_data
    assert len(captions_mapping) == 9 and len(text_data) == 47
    assert os.path.join(IMAGES_PATH, "1003_img.jpg") not in captions_mapping
    assert (len(train_data), len(valid_data)) == (7, 2)

    def custom_standardization(input_string):
        lowercase = tf.strings.lower(input_string)
        return tf.strings.regex_replace(lowercase, "[%s]" % re.escape(strip_chars), "")

    strip_chars = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    strip_chars = strip_chars.replace("<", "")
    strip_chars = strip_chars.replace(">", "")

    vectorization = TextVectorization(
        max_tokens=VOCAB_SIZE,
        output_mode="int",
        output_sequence_length=SEQ_LENGTH,
        standardize=custom_standardization,
    )
    vectorization.adapt(text_data)
    vocab = vectorization.get_vocabulary()
    assert {"<start>", "<end>"} <= set(vocab) and "." not in vocab and "Dog" not in vocab

    image_augmentation = keras.Sequential(
        [
            layers.RandomFlip("horizontal"),
            layers.RandomRotation(0.2),
            layers.RandomContrast(0.3),
        ]
    )

    def decode_and_resize(img_path):
        img = tf.io.read_file(img_path)
        img = tf.image.decode_jpeg(img, channels=3)
        img = tf.image.resize(img, IMAGE_SIZE)
        img = tf.image.convert_image_dtype(img, tf.float32)
        return img

    def process_input(img_path, captions):
        return decode_and_resize(img_path), vectorization(captions)

    def make_dataset(images, captions):
        dataset = tf.data.Dataset.from_tensor_slices((images, captions))
        dataset = dataset.shuffle(len(images))
        dataset = dataset.map(process_input, num_parallel_calls=AUTOTUNE)
        dataset = dataset.batch(BATCH_SIZE).prefetch(AUTOTUNE)
        return dataset

    train_dataset = make_dataset(list(train_data.keys()), list(train_data.values()))
    valid_dataset = make_dataset(list(valid_data.keys()), list(valid_data.values()))

    batch_img, batch_seq = next(iter(train_dataset))
    assert batch_img.shape == (4, 32, 32, 3) and batch_seq.shape == (4, 5, SEQ_LENGTH)
    assert (np.asarray(batch_seq)[:, :, 0] == vocab.index("<start>")).all()
    assert (np.asarray(batch_seq)[:, :, -1] == 0).all()  # <= 5 words + 2 markers < 8

    def get_cnn_model():
        base_model = efficientnet.EfficientNetB0(
            input_shape=(*IMAGE_SIZE, 3),
            include_top=False,
            weights=None,  # "imagenet": a download
        )
        base_model.trainable = False
        base_model_out = base_model.output
        base_model_out = layers.Reshape((-1, base_model_out.shape[-1]))(base_model_out)
        cnn_model = keras.models.Model(base_model.input, base_model_out)
        return cnn_model

    class TransformerEncoderBlock(layers.Layer):
        def __init__(self, embed_dim, dense_dim, num_heads, **kwargs):
            super().__init__(**kwargs)
            self.embed_dim = embed_dim
            self.dense_dim = dense_dim
            self.num_heads = num_heads
            self.attention_1 = layers.MultiHeadAttention(
                num_heads=num_heads, key_dim=embed_dim, dropout=0.0
            )
            self.layernorm_1 = layers.LayerNormalization()
            self.layernorm_2 = layers.LayerNormalization()
            self.dense_1 = layers.Dense(embed_dim, activation="relu")

        def call(self, inputs, training, mask=None):
            inputs = self.layernorm_1(inputs)
            inputs = self.dense_1(inputs)

            attention_output_1 = self.attention_1(
                query=inputs,
                value=inputs,
                key=inputs,
                attention_mask=None,
                training=training,
            )
            out_1 = self.layernorm_2(inputs + attention_output_1)
            return out_1

    class PositionalEmbedding(layers.Layer):
        def __init__(self, sequence_length, vocab_size, embed_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_embeddings = layers.Embedding(
                input_dim=vocab_size, output_dim=embed_dim
            )
            self.position_embeddings = layers.Embedding(
                input_dim=sequence_length, output_dim=embed_dim
            )
            self.sequence_length = sequence_length
            self.vocab_size = vocab_size
            self.embed_dim = embed_dim
            self.embed_scale = tf.math.sqrt(tf.cast(embed_dim, tf.float32))

        def call(self, inputs):
            length = tf.shape(inputs)[-1]
            positions = tf.range(start=0, limit=length, delta=1)
            embedded_tokens = self.token_embeddings(inputs)
            embedded_tokens = embedded_tokens * self.embed_scale
            embedded_positions = self.position_embeddings(positions)
            return embedded_tokens + embedded_positions

        def compute_mask(self, inputs, mask=None):
            return tf.math.not_equal(inputs, 0)

    class TransformerDecoderBlock(layers.Layer):
        def __init__(self, embed_dim, ff_dim, num_heads, **kwargs):
            super().__init__(**kwargs)
            self.embed_dim = embed_dim
            self.ff_dim = ff_dim
            self.num_heads = num_heads
            self.attention_1 = layers.MultiHeadAttention(
                num_heads=num_heads, key_dim=embed_dim, dropout=0.1
            )
            self.attention_2 = layers.MultiHeadAttention(
                num_heads=num_heads, key_dim=embed_dim, dropout=0.1
            )
            self.ffn_layer_1 = layers.Dense(ff_dim, activation="relu")
            self.ffn_layer_2 = layers.Dense(embed_dim)

            self.layernorm_1 = layers.LayerNormalization()
            self.layernorm_2 = layers.LayerNormalization()
            self.layernorm_3 = layers.LayerNormalization()

            self.embedding = PositionalEmbedding(
                embed_dim=EMBED_DIM, sequence_length=SEQ_LENGTH, vocab_size=VOCAB_SIZE
            )
            self.out = layers.Dense(VOCAB_SIZE, activation="softmax")

            self.dropout_1 = layers.Dropout(0.3)
            self.dropout_2 = layers.Dropout(0.5)
            self.supports_masking = True

        def call(self, inputs, encoder_outputs, training, mask=None):
            inputs = self.embedding(inputs)
            causal_mask = self.get_causal_attention_mask(inputs)

            if mask is not None:
                padding_mask = tf.cast(mask[:, :, tf.newaxis], dtype=tf.int32)
                combined_mask = tf.cast(mask[:, tf.newaxis, :], dtype=tf.int32)
                combined_mask = tf.minimum(combined_mask, causal_mask)

            attention_output_1 = self.attention_1(
                query=inputs,
                value=inputs,
                key=inputs,
                attention_mask=combined_mask,
                training=training,
            )
            out_1 = self.layernorm_1(inputs + attention_output_1)

            attention_output_2 = self.attention_2(
                query=out_1,
                value=encoder_outputs,
                key=encoder_outputs,
                attention_mask=padding_mask,
                training=training,
            )
            out_2 = self.layernorm_2(out_1 + attention_output_2)

            ffn_out = self.ffn_layer_1(out_2)
            ffn_out = self.dropout_1(ffn_out, training=training)
            ffn_out = self.ffn_layer_2(ffn_out)

            ffn_out = self.layernorm_3(ffn_out + out_2, training=training)
            ffn_out = self.dropout_2(ffn_out, training=training)
            preds = self.out(ffn_out)
            return preds

        def get_causal_attention_mask(self, inputs):
            input_shape = tf.shape(inputs)
            batch_size, sequence_length = input_shape[0], input_shape[1]
            i = tf.range(sequence_length)[:, tf.newaxis]
            j = tf.range(sequence_length)
            mask = tf.cast(i >= j, dtype="int32")
            mask = tf.reshape(mask, (1, input_shape[1], input_shape[1]))
            mult = tf.concat(
                [tf.expand_dims(batch_size, -1), tf.constant([1, 1], dtype=tf.int32)],
                axis=0,
            )
            return tf.tile(mask, mult)

    class ImageCaptioningModel(keras.Model):
        def __init__(
            self,
            cnn_model,
            encoder,
            decoder,
            num_captions_per_image=5,
            image_aug=None,
        ):
            super().__init__()
            self.cnn_model = cnn_model
            self.encoder = encoder
            self.decoder = decoder
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.acc_tracker = keras.metrics.Mean(name="accuracy")
            self.num_captions_per_image = num_captions_per_image
            self.image_aug = image_aug

        def calculate_loss(self, y_true, y_pred, mask):
            loss = self.loss(y_true, y_pred)
            mask = tf.cast(mask, dtype=loss.dtype)
            loss *= mask
            return tf.reduce_sum(loss) / tf.reduce_sum(mask)

        def calculate_accuracy(self, y_true, y_pred, mask):
            accuracy = tf.equal(y_true, tf.argmax(y_pred, axis=2))
            accuracy = tf.math.logical_and(mask, accuracy)
            accuracy = tf.cast(accuracy, dtype=tf.float32)
            mask = tf.cast(mask, dtype=tf.float32)
            return tf.reduce_sum(accuracy) / tf.reduce_sum(mask)

        def _compute_caption_loss_and_acc(self, img_embed, batch_seq, training=True):
            encoder_out = self.encoder(img_embed, training=training)
            batch_seq_inp = batch_seq[:, :-1]
            batch_seq_true = batch_seq[:, 1:]
            mask = tf.math.not_equal(batch_seq_true, 0)
            batch_seq_pred = self.decoder(
                batch_seq_inp, encoder_out, training=training, mask=mask
            )
            loss = self.calculate_loss(batch_seq_true, batch_seq_pred, mask)
            acc = self.calculate_accuracy(batch_seq_true, batch_seq_pred, mask)
            return loss, acc

        def train_step(self, batch_data):
            batch_img, batch_seq = batch_data
            batch_loss = 0
            batch_acc = 0

            if self.image_aug:
                batch_img = self.image_aug(batch_img)

            img_embed = self.cnn_model(batch_img)

            for i in range(self.num_captions_per_image):
                with tf.GradientTape() as tape:
                    loss, acc = self._compute_caption_loss_and_acc(
                        img_embed, batch_seq[:, i, :], training=True
                    )

                    batch_loss += loss
                    batch_acc += acc

                train_vars = (
                    self.encoder.trainable_variables + self.decoder.trainable_variables
                )

                grads = tape.gradient(loss, train_vars)

                self.optimizer.apply_gradients(zip(grads, train_vars))

            batch_acc /= float(self.num_captions_per_image)
            self.loss_tracker.update_state(batch_loss)
            self.acc_tracker.update_state(batch_acc)

            return {"loss": self.loss_tracker.result(), "acc": self.acc_tracker.result()}

        def test_step(self, batch_data):
            batch_img, batch_seq = batch_data
            batch_loss = 0
            batch_acc = 0

            img_embed = self.cnn_model(batch_img)

            for i in range(self.num_captions_per_image):
                loss, acc = self._compute_caption_loss_and_acc(
                    img_embed, batch_seq[:, i, :], training=False
                )

                batch_loss += loss
                batch_acc += acc

            batch_acc /= float(self.num_captions_per_image)

            self.loss_tracker.update_state(batch_loss)
            self.acc_tracker.update_state(batch_acc)

            return {"loss": self.loss_tracker.result(), "acc": self.acc_tracker.result()}

        @property
        def metrics(self):
            return [self.loss_tracker, self.acc_tracker]

    cnn_model = get_cnn_model()
    encoder = TransformerEncoderBlock(embed_dim=EMBED_DIM, dense_dim=FF_DIM, num_heads=1)
    decoder = TransformerDecoderBlock(embed_dim=EMBED_DIM, ff_dim=FF_DIM, num_heads=2)
    caption_model = ImageCaptioningModel(
        cnn_model=cnn_model,
        encoder=encoder,
        decoder=decoder,
        image_aug=image_augmentation,
    )

    cross_entropy = keras.losses.SparseCategoricalCrossentropy(
        from_logits=False, reduction="none"
    )

    early_stopping = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)

    class LRSchedule(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self, post_warmup_learning_rate, warmup_steps):
            super().__init__()
            self.post_warmup_learning_rate = post_warmup_learning_rate
            self.warmup_steps = warmup_steps

        def __call__(self, step):
            global_step = tf.cast(step, tf.float32)
            warmup_steps = tf.cast(self.warmup_steps, tf.float32)
            warmup_progress = global_step / warmup_steps
            warmup_learning_rate = self.post_warmup_learning_rate * warmup_progress
            return tf.cond(
                global_step < warmup_steps,
                lambda: warmup_learning_rate,
                lambda: self.post_warmup_learning_rate,
            )

    num_train_steps = len(train_dataset) * EPOCHS
    num_warmup_steps = num_train_steps // 15
    lr_schedule = LRSchedule(post_warmup_learning_rate=1e-4, warmup_steps=num_warmup_steps)
    assert (num_train_steps, num_warmup_steps) == (2, 0)  # no warm-up at this size
    np.testing.assert_allclose([float(lr_schedule(s)) for s in (0, 1, 5)], 1e-4)
    warmed = LRSchedule(post_warmup_learning_rate=1e-4, warmup_steps=4)
    np.testing.assert_allclose([float(warmed(s)) for s in (0, 2, 4, 9)],
                               [0.0, 5e-5, 1e-4, 1e-4], rtol=1e-6)

    caption_model.compile(optimizer=keras.optimizers.Adam(lr_schedule), loss=cross_entropy)

    frozen = [w.numpy() for w in cnn_model.weights]
    snapshots = []  # the encoder's and decoder's weights after each of the two steps
    snapshot = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: (
        snapshots.append([w.numpy() for w in encoder.weights + decoder.weights])))
    history = caption_model.fit(
        train_dataset,
        epochs=EPOCHS,
        validation_data=valid_dataset,
        callbacks=[early_stopping, snapshot],
    )
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert np.isfinite(history.history["loss"][0]) and 0 <= history.history["acc"][0] <= 1
    for before, w in zip(frozen, cnn_model.weights):
        np.testing.assert_array_equal(before, w.numpy())
    moved = [not np.array_equal(a, b) for a, b in zip(*snapshots)]
    assert len(snapshots) == 2 and sum(moved) > len(moved) // 2

    vocab = vectorization.get_vocabulary()
    index_lookup = dict(zip(range(len(vocab)), vocab))
    max_decoded_sentence_length = SEQ_LENGTH - 1
    valid_images = list(valid_data.keys())
    captions = []

    def generate_caption():
        sample_img = np.random.choice(valid_images)

        sample_img = decode_and_resize(sample_img)
        img = sample_img.numpy().clip(0, 255).astype(np.uint8)
        assert img.shape == (32, 32, 3)

        img = tf.expand_dims(sample_img, 0)
        img = caption_model.cnn_model(img)

        encoded_img = caption_model.encoder(img, training=False)

        decoded_caption = "<start> "
        for i in range(max_decoded_sentence_length):
            tokenized_caption = vectorization([decoded_caption])[:, :-1]
            mask = tf.math.not_equal(tokenized_caption, 0)
            predictions = caption_model.decoder(
                tokenized_caption, encoded_img, training=False, mask=mask
            )
            sampled_token_index = np.argmax(predictions[0, i, :])
            sampled_token = index_lookup[sampled_token_index]
            if sampled_token == " <end>":
                break
            decoded_caption += " " + sampled_token

        decoded_caption = decoded_caption.replace("<start> ", "")
        decoded_caption = decoded_caption.replace(" <end>", "").strip()
        print("Predicted Caption: ", decoded_caption)
        captions.append(decoded_caption)

    generate_caption()
    generate_caption()
    generate_caption()
    assert all(set(c.split()) <= set(vocab) for c in captions)
