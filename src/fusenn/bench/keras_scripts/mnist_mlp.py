"""A Keras MNIST MLP as people write it: 784-128-10, ReLU, Adam, 5 epochs of batch 32.

It reads the MNIST test set (10,000 images) from the directory in the MNIST_DIR environment
variable and trains on its first 8,000 images, testing on the last 2,000. Written for Keras;
fusenn runs it with the imports changed from ``keras`` to ``fusenn.keras``.
"""
import gzip
import os
import time

import numpy as np
from keras.models import Sequential
from keras.layers import Dense, Input
from keras.utils import to_categorical


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


folder = os.environ["MNIST_DIR"]
images = read_idx(os.path.join(folder, "t10k-images-idx3-ubyte.gz"))
labels = read_idx(os.path.join(folder, "t10k-labels-idx1-ubyte.gz"))
x = images.reshape(len(images), 784).astype("float32") / 255.0
y = to_categorical(labels, 10)
x_train, y_train, x_test, y_test = x[:8000], y[:8000], x[8000:], y[8000:]

model = Sequential([
    Input(shape=(784,)),
    Dense(128, activation="relu"),
    Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.summary()

start = time.perf_counter()
history = model.fit(x_train, y_train, batch_size=32, epochs=5, verbose=2)
fit_seconds = time.perf_counter() - start

test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"fit_seconds: {fit_seconds:.3f}")
print(f"test_accuracy: {test_accuracy:.4f}")
print(f"final_loss: {history.history['loss'][-1]:.4f}")
