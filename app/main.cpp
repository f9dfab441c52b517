// cifar10: parse, run, report. Everything else lives in the library.
#include <iostream>

#include "common/error.h"
#include "common/runtime.h"
#include "config/cli.h"
#include "distributed/launcher.h"
#include "evaluation/predict.h"
#include "pipeline/pipeline.h"
#include "training/export.h"

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
      case CommandLine::Command::kExport:
        return cifar::run_export(cmd.export_options);
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
    return cifar::report_error(e.what(), e.exit_code());
  } catch (const c10::Error& e) {
    return cifar::report_error("LibTorch: " + cifar::first_line(e.what_without_backtrace()), cifar::kExitRuntime);
  } catch (const std::exception& e) {
    return cifar::report_error(e.what(), cifar::kExitRuntime);
  }
  return cifar::kExitRuntime;
}
