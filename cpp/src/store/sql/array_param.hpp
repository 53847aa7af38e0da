#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace taskengine::sql {

// A PostgreSQL array literal ({"a","b",NULL}) built element by element, sent
// as one text parameter and cast in the statement ($1::text[]): a whole
// chunk of rows then travels as a few parameters of one statement
// (INSERT ... SELECT FROM unnest(...)), parsed and planned once, instead of
// a parameter per row and column.
class ArrayParam {
 public:
  void add_text(std::string_view text);  // quoted, " and \ escaped
  void add_integer(std::int64_t value);
  void add_null();
  template <typename T>
  void add_optional(const std::optional<T>& value) {
    value ? add_integer(*value) : add_null();
  }
  std::size_t size() const { return size_; }
  // The literal; the builder is empty again afterwards.
  std::string take();

 private:
  void separate();
  std::string text_ = "{";
  std::size_t size_ = 0;
};

}  // namespace taskengine::sql
