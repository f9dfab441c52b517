// `cifar10 export --load-model CKPT --format safetensors OUT`: a
// checkpoint's weights (parameters and buffers) as a .safetensors file that
// other tools read: Hugging Face's safetensors, and torchvision's
// efficientnet_b0 through load_state_dict, for our EfficientNet uses its
// names. Every other model keeps our module names (fc.weight, ...). The
// run's configuration and model spec travel in __metadata__ as JSON text.
#pragma once
#include <string>

#include "config/cli.h"
#include "models/safetensors.h"
#include "checkpoint/checkpoint.h"

namespace cifar {

struct ExportedWeights {
  TensorMap tensors;
  SafetensorsMetadata metadata;  // format, cifar10.spec, cifar10.config, cifar10.names, cifar10.version
};

// The file's content for a loaded checkpoint.
ExportedWeights exported_weights(const LoadedModel& loaded);

// Checks the options, reads the checkpoint, writes the file atomically and
// says what it wrote; returns the exit code. Bad inputs (an unknown
// --format, a missing or foreign checkpoint, an output that is the
// checkpoint itself, a folder, or not writable) throw one UserError.
int run_export(const ExportOptions& options);

}  // namespace cifar
