// A checkpoint's optimiser state in a layout every LibTorch version reads:
// each parameter's state (Adam's moments, SGD's momentum) by its place in
// the optimiser, group and index, with the optimiser's kind and each
// group's options; read back whole and checked before any of it is applied.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

namespace cifar {

// The optimiser archive save_checkpoint stores (Adam, AdamW or SGD).
std::string optimizer_archive_bytes(torch::optim::Optimizer& optimizer);

// Loads an archive optimizer_archive_bytes wrote into `optimizer`, which
// must be of the same kind with the same groups and parameter shapes;
// otherwise throws UserError naming `path`, the optimiser unchanged.
void load_optimizer_archive(torch::serialize::InputArchive& archive, torch::optim::Optimizer& optimizer,
                            const std::string& path);

// The tensors of one parameter's state (Adam's and AdamW's moments, SGD's
// momentum buffer); empty for any other kind.
std::vector<torch::Tensor> state_tensors(const torch::optim::OptimizerParamState& state);

}  // namespace cifar
