#include "distributed/context.h"

namespace cifar {

std::unique_ptr<DistributedContext> make_single_process_context() {
  return std::make_unique<DistributedContext>();
}

}  // namespace cifar
