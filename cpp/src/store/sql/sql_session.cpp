#include "store/sql/sql_session.hpp"

#include <spdlog/spdlog.h>

#include <bit>

#include "taskengine/errors.hpp"

namespace taskengine::sql {

Value null() { return std::monostate{}; }

bool Row::is_null(std::size_t i) const {
  return std::holds_alternative<std::monostate>(values_.at(i));
}

std::int64_t Row::integer(std::size_t i) const {
  const Value& v = values_.at(i);
  if (auto p = std::get_if<std::int64_t>(&v)) return *p;
  if (auto p = std::get_if<double>(&v)) return static_cast<std::int64_t>(*p);
  if (auto p = std::get_if<std::string>(&v)) return std::stoll(*p);
  throw StoreError("unexpected NULL in an integer column");
}

double Row::real(std::size_t i) const {
  const Value& v = values_.at(i);
  if (auto p = std::get_if<double>(&v)) return *p;
  if (auto p = std::get_if<std::int64_t>(&v)) return static_cast<double>(*p);
  if (auto p = std::get_if<std::string>(&v)) return std::stod(*p);
  throw StoreError("unexpected NULL in a numeric column");
}

std::string Row::text(std::size_t i) const {
  const Value& v = values_.at(i);
  if (auto p = std::get_if<std::string>(&v)) return *p;
  if (auto p = std::get_if<std::int64_t>(&v)) return std::to_string(*p);
  if (auto p = std::get_if<double>(&v)) return std::to_string(*p);
  throw StoreError("unexpected NULL in a text column");
}

bool Row::boolean(std::size_t i) const {
  const Value& v = values_.at(i);
  if (auto p = std::get_if<std::int64_t>(&v)) return *p != 0;
  if (auto p = std::get_if<std::string>(&v)) return *p == "t" || *p == "true" || *p == "1";
  return false;
}

std::optional<std::int64_t> Row::optional_integer(std::size_t i) const {
  if (is_null(i)) return std::nullopt;
  return integer(i);
}

std::optional<double> Row::optional_real(std::size_t i) const {
  if (is_null(i)) return std::nullopt;
  return real(i);
}

std::optional<std::string> Row::optional_text(std::size_t i) const {
  if (is_null(i)) return std::nullopt;
  return text(i);
}

const Rows& Pending::rows() const {
  if (!state_->ready) throw StoreError("a statement's result was read before it arrived");
  return state_->rows;
}

Rows Pending::take_rows() {
  if (!state_->ready) throw StoreError("a statement's result was read before it arrived");
  return std::move(state_->rows);
}

std::int64_t Pending::affected() const {
  if (!state_->ready) throw StoreError("a statement's result was read before it arrived");
  return state_->affected;
}

void Pending::fulfil(Rows rows, std::int64_t affected) {
  state_->rows = std::move(rows);
  state_->affected = affected;
  state_->ready = true;
}

Transaction::Transaction(Session& session, bool for_write) : session_(session) {
  session_.begin(for_write);
}

Transaction::~Transaction() {
  if (!open_) return;
  try {
    session_.rollback();
  } catch (const std::exception& e) {
    // A destructor must not throw; the connection reports the problem on
    // its next use.
    spdlog::warn("rollback failed: {}", e.what());
  }
}

void Transaction::commit() {
  session_.commit();
  open_ = false;
}

std::string padded_in_list(Params& params, std::size_t count) {
  if (count == 0 || count > params.size())
    throw InvalidArgument("padded_in_list: the list must be the last values of the parameters");
  std::size_t padded = std::bit_ceil(count);
  Value last = params.back();
  for (std::size_t i = count; i < padded; ++i) params.push_back(last);
  std::string out;
  for (std::size_t i = params.size() - padded + 1; i <= params.size(); ++i)
    out += (out.empty() ? "$" : ", $") + std::to_string(i);
  return out;
}

}  // namespace taskengine::sql
