#include "data/augment.h"

#include <cmath>

#include "common/runtime.h"

namespace cifar {

uint64_t step_seed(uint64_t seed, int64_t epoch, int64_t step, uint64_t stream) {
  // splitmix64 over the tuple: cheap, and nearby tuples give unrelated seeds.
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  uint64_t h = mix(seed);
  h = mix(h ^ static_cast<uint64_t>(epoch));
  h = mix(h ^ static_cast<uint64_t>(step));
  return mix(h ^ stream);
}

torch::Tensor flip_where(const torch::Tensor& x, const torch::Tensor& mask) {
  auto m = to_device_async(mask, x.device()).view({-1, 1, 1, 1});
  return torch::where(m, x.flip({3}), x);
}

torch::Tensor shift_images(const torch::Tensor& x, const torch::Tensor& dy, const torch::Tensor& dx,
                           int64_t pad) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  auto padded = torch::constant_pad_nd(x, {pad, pad, pad, pad}, 0.0);
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
  // Output row i of image b reads padded row i + pad - dy[b].
  auto rows = torch::arange(h, opts).view({1, h}) + (pad - to_device_async(dy, x.device())).view({b, 1});
  auto cols = torch::arange(w, opts).view({1, w}) + (pad - to_device_async(dx, x.device())).view({b, 1});
  auto out = padded.gather(2, rows.view({b, 1, h, 1}).expand({b, c, h, w + 2 * pad}));
  return out.gather(3, cols.view({b, 1, 1, w}).expand({b, c, h, w}));
}

torch::Tensor first_flips(int64_t images, uint64_t seed, const torch::Device& device) {
  auto gen = at::detail::createCPUGenerator(step_seed(seed, -1, -1, 3));
  return torch::randint(0, 2, {images}, gen, torch::kInt64).to(device);
}

torch::Tensor alternating_flips(const torch::Tensor& first, const torch::Tensor& indices, int64_t epoch) {
  return first.index_select(0, indices.to(first.device())).bitwise_xor(epoch % 2).to(torch::kBool);
}

at::Generator seeded_generator(const torch::Device& device, uint64_t seed) {
  if (device.is_cpu()) return at::detail::createCPUGenerator(seed);
  auto gen = at::globalContext().defaultGenerator(device).clone();
  gen.set_current_seed(seed);
  return gen;
}

torch::Tensor Augmenter::apply(const torch::Tensor& x, uint64_t seed, const torch::Tensor& flips) const {
  const int64_t b = x.size(0);
  // Every draw is made on the images' device: on a GPU no step waits for
  // the host to draw and copy (the CPU's draws are those of a CPU
  // generator with this seed, as they always were).
  auto gen = seeded_generator(x.device(), seed);
  const auto on = torch::TensorOptions().device(x.device());
  // Drawn as float32 whatever the images' type, so a float64 run augments
  // the same images; the arithmetic on the draws is in the images' type
  // (float32 trigonometry differs in the last place between CPUs' kernels).
  const auto dtype = x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto uniform = [&](double lo, double hi) {
    return torch::rand({b}, gen, on.dtype(torch::kFloat32)).to(dtype) * (hi - lo) + lo;
  };
  auto flip = flips.defined() ? flips.to(x.device(), torch::kBool)
              : config_.flip  ? torch::rand({b}, gen, on.dtype(torch::kFloat32)) < 0.5
                              : torch::zeros({b}, on.dtype(torch::kBool));

  torch::Tensor out;
  if (geometric()) {
    // theta maps output to input coordinates in [-1, 1]: scale, then rotate,
    // then shift; a mirrored x axis folds the flip into the same resample.
    const double kPi = 3.14159265358979323846;
    auto angle = uniform(-config_.rotation, config_.rotation) * (kPi / 180.0);
    auto scale = uniform(1.0 - config_.zoom, 1.0 + config_.zoom);
    auto tx = uniform(-config_.translation, config_.translation) * 2.0;
    auto ty = uniform(-config_.translation, config_.translation) * 2.0;
    auto sx = torch::where(flip, -torch::ones({b}, on.dtype(dtype)), torch::ones({b}, on.dtype(dtype)));
    auto cos = torch::cos(angle) * scale, sin = torch::sin(angle) * scale;
    auto theta = torch::stack({torch::stack({cos * sx, -sin, tx}, 1), torch::stack({sin * sx, cos, ty}, 1)}, 1);
    auto grid = torch::nn::functional::affine_grid(theta.to(x.scalar_type()), x.sizes().vec(), false);
    out = torch::nn::functional::grid_sample(
        x, grid,
        torch::nn::functional::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kReflection).align_corners(false));
  } else {
    out = config_.flip || flips.defined() ? flip_where(x, flip) : x.clone();
  }
  if (config_.crop_padding > 0) {
    const int64_t p = config_.crop_padding;
    auto dy = torch::randint(-p, p + 1, {b}, gen, on.dtype(torch::kInt64));
    auto dx = torch::randint(-p, p + 1, {b}, gen, on.dtype(torch::kInt64));
    out = shift_images(out, dy, dx, p);
  }
  if (config_.cutout > 0) {
    const int64_t h = x.size(2), w = x.size(3), side = config_.cutout;
    auto cy = torch::randint(0, h, {b}, gen, on.dtype(torch::kInt64)).view({b, 1, 1});
    auto cx = torch::randint(0, w, {b}, gen, on.dtype(torch::kInt64)).view({b, 1, 1});
    auto ys = torch::arange(h, on.dtype(torch::kInt64)).view({1, h, 1});
    auto xs = torch::arange(w, on.dtype(torch::kInt64)).view({1, 1, w});
    auto y0 = cy - side / 2, x0 = cx - side / 2;
    auto hole = (ys >= y0) & (ys < y0 + side) & (xs >= x0) & (xs < x0 + side);
    out = out.masked_fill(hole.unsqueeze(1), 0.0);
  }
  return out;
}

}  // namespace cifar
