// cifar10: parse, plan, run, report. Everything else lives in the library.
#include "common/error.h"
#include "common/error_report.h"
#include "common/runtime.h"
#include "config/cli.h"
#include "distributed/launcher.h"
#include "evaluation/predict.h"
#include "checkpoint/export.h"
#include "run/plan.h"
#include "run/run.h"

int main(int argc, char** argv) {
  using cifar::CommandLine;
  cifar::install_terminate_handler();
  cifar::set_error_report_hook(cifar::let_rank_zero_report);
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
        // Planned (every input checked) once here, before any worker starts.
        const cifar::RunPlan plan = cifar::plan_run(cmd.config, cmd.given);
        if (const int workers = cifar::local_workers_to_start(plan.config, cifar::process_environment())) {
          return cifar::launch_local_workers(workers, plan.config, argc, argv, cmd.config_text);
        }
        return cifar::run(plan);
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
