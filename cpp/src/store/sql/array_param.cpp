#include "store/sql/array_param.hpp"

#include <charconv>

namespace taskengine::sql {

void ArrayParam::separate() {
  if (size_++) text_ += ',';
}

void ArrayParam::add_text(std::string_view text) {
  separate();
  text_ += '"';
  // Only the quote and the backslash are special inside a quoted element:
  // copied in runs between them (payloads are JSON, full of quotes).
  const char* run = text.data();
  const char* end = text.data() + text.size();
  for (const char* p = run; p != end; ++p) {
    if (*p != '"' && *p != '\\') continue;
    text_.append(run, p);
    text_ += '\\';
    run = p;  // the special character starts the next run
  }
  text_.append(run, end);
  text_ += '"';
}

void ArrayParam::add_integer(std::int64_t value) {
  separate();
  char buffer[24];
  auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
  text_.append(buffer, end);
}

void ArrayParam::add_null() {
  separate();
  text_ += "NULL";
}

std::string ArrayParam::take() {
  std::string out = std::move(text_);
  out += '}';
  text_.assign(1, '{');
  size_ = 0;
  return out;
}

}  // namespace taskengine::sql
