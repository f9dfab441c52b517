// cifar10: parse, run, report. Everything else lives in the library.
#include <iostream>

#include "common/error.h"
#include "common/printable.h"
#include "common/runtime.h"
#include "config/cli.h"
#include "distributed/launcher.h"
#include "evaluation/predict.h"
#include "pipeline/pipeline.h"

int main(int argc, char** argv) {
  using cifar::CommandLine;
  cifar::install_terminate_handler();
  try {
    const CommandLine cmd = cifar::parse_command_line(argc, argv);
    switch (cmd.command) {
      case CommandLine::Command::kExit:
        return cmd.exit_code;
      case CommandLine::Command::kPredict:
        return cifar::run_predict(cmd.predict);
      case CommandLine::Command::kTrain: {
        const cifar::Config config = cifar::resumed_run_config(cmd.config, cmd.given);
        if (const int workers = cifar::local_workers_to_start(config, cifar::process_environment())) {
          cifar::check_run_inputs(config);
          return cifar::launch_local_workers(workers, config, argc, argv);
        }
        return cifar::run_pipeline(config);
      }
    }
  } catch (const cifar::UserError& e) {
    std::cerr << "error: " << cifar::printable(e.what()) << "\n";
    return e.exit_code();
  } catch (const c10::Error& e) {
    std::cerr << "error: LibTorch: " << cifar::printable(cifar::first_line(e.what_without_backtrace())) << "\n";
    return cifar::kExitRuntime;
  } catch (const std::exception& e) {
    std::cerr << "error: " << cifar::printable(e.what()) << "\n";
    return cifar::kExitRuntime;
  }
  return cifar::kExitRuntime;
}
