"""medlib: transfer learning versus self-supervised pre-training for small medical image datasets.

A thin library behind the study book that reproduces and extends Zhao et al., "Transfer or
Self-Supervised? Bridging the Performance Gap in Medical Imaging" (arXiv:2407.05592) on MedMNIST
(Yang et al., "MedMNIST v2", Scientific Data 2023).
"""

__version__ = "0.1.0"
