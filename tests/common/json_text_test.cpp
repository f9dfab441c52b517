#include "common/json_text.h"

#include <gtest/gtest.h>

namespace cifar {
namespace {

using nlohmann::json;

// A Latin-1 "café" and a lone continuation byte, as a Linux file name or an
// old batches.meta.txt can hold them.
const std::string kLatin1 = "caf\xE9";
const std::string kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

TEST(JsonText, InvalidUtf8BecomesReplacementCharactersInsteadOfThrowing) {
  const json j = {{"file", "photos/" + kLatin1 + ".png"}, {"classes", {"cat", "\x80"}}};
  // What happened before: nlohmann refuses the whole document.
  EXPECT_THROW((void)j.dump(2), json::type_error);
  const std::string text = json_text(j, 2);
  const json back = json::parse(text);
  EXPECT_EQ(back["file"], "photos/caf" + kReplacement + ".png");
  EXPECT_EQ(back["classes"][1], kReplacement);
  EXPECT_EQ(back["classes"][0], "cat");
}

TEST(JsonText, ValidTextIsExactlyWhatDumpWrites) {
  const json j = {{"name", "caf\xC3\xA9 \xE2\x9C\x93"}, {"n", 3}, {"x", 0.25}, {"nested", {{"a", {1, 2}}}}};
  EXPECT_EQ(json_text(j, 2), j.dump(2));
  EXPECT_EQ(json_text(j), j.dump());
  EXPECT_EQ(json_text(j).find('\n'), std::string::npos);
}

TEST(JsonText, ValidUtf8MatchesWhatARoundTripGivesBack) {
  EXPECT_EQ(valid_utf8("plain"), "plain");
  EXPECT_EQ(valid_utf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(valid_utf8(kLatin1), "caf" + kReplacement);
  // A name compared after a round trip through a checkpoint's JSON.
  const std::string stored = json::parse(json_text(json{{"n", kLatin1}}))["n"].get<std::string>();
  EXPECT_EQ(valid_utf8(kLatin1), stored);
  EXPECT_EQ(valid_utf8(stored), stored);
}

}  // namespace
}  // namespace cifar
