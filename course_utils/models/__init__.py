"""Model building blocks: layer formulas, pretrained backbones, transfer learning, sequence models, Lightning."""
