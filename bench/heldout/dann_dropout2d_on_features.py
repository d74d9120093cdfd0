"""A DANN digit classifier whose fully connected head uses nn.Dropout2d on a (batch, features)
tensor: channel-wise dropout needs (N, C, H, W); on a 2-D input it does not drop the features
the author meant to drop.

Modeled on fungtion/DANN_py3 issue #3 (model.py's class_classifier used dropout2d after a
fully connected layer; the author fixed it to dropout). Rewritten; only the pattern is kept.
"""

import torch
from torch import nn


class CNNModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.feature = nn.Sequential()
        self.feature.add_module("f_conv1", nn.Conv2d(3, 64, kernel_size=5, bias=False))
        self.feature.add_module("f_bn1", nn.BatchNorm2d(64))
        self.feature.add_module("f_pool1", nn.MaxPool2d(2))
        self.feature.add_module("f_relu1", nn.ReLU(True))
        self.feature.add_module("f_conv2", nn.Conv2d(64, 50, kernel_size=5, bias=False))
        self.feature.add_module("f_bn2", nn.BatchNorm2d(50))
        self.feature.add_module("f_pool2", nn.MaxPool2d(2))
        self.feature.add_module("f_relu2", nn.ReLU(True))

        self.class_classifier = nn.Sequential()
        self.class_classifier.add_module("c_fc1", nn.Linear(50 * 4 * 4, 100, bias=False))
        self.class_classifier.add_module("c_bn1", nn.BatchNorm1d(100))
        self.class_classifier.add_module("c_relu1", nn.ReLU(True))
        self.class_classifier.add_module("c_drop1", nn.Dropout2d())  # expect: NN206
        self.class_classifier.add_module("c_fc2", nn.Linear(100, 100, bias=False))
        self.class_classifier.add_module("c_bn2", nn.BatchNorm1d(100))
        self.class_classifier.add_module("c_relu2", nn.ReLU(True))
        self.class_classifier.add_module("c_fc3", nn.Linear(100, 10))
        self.class_classifier.add_module("c_softmax", nn.LogSoftmax(dim=1))

    def forward(self, input_data: torch.Tensor) -> torch.Tensor:
        feature = self.feature(input_data).view(-1, 50 * 4 * 4)
        return self.class_classifier(feature)


model = CNNModel()
loss_fn = nn.NLLLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
example_input = torch.randn(32, 3, 28, 28)
