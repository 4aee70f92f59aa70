#include "proto/text_io.hpp"

#include <memory>
#include <set>
#include <vector>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

namespace ferry {

namespace {

namespace pb = google::protobuf;

/// Keeps the first error of a text-format parse.
class text_errors : public pb::io::ErrorCollector {
public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (first_.empty())
      first_ = "line " + std::to_string(line + 1) + " column " + std::to_string(column + 1)
               + ": " + message;
  }
  const std::string& first() const { return first_; }

private:
  std::string first_;
};

/// The first key given twice in a map of `m` or of a message within it, as the text-format
/// parser left them: right after a parse, a map's entries are still the entries as written
/// (read through reflection as a repeated field), duplicates included.
std::string duplicate_map_key(const pb::Message& m, const pb::TextFormat::ParseInfoTree* tree) {
  auto* d = m.GetDescriptor();
  auto* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    auto* f = d->field(i);
    if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE)
      continue;
    auto nested = [&](int index) { return tree ? tree->GetTreeForNested(f, index) : nullptr; };
    if (f->is_map()) {
      auto* key_field = f->message_type()->map_key();
      auto* value_field = f->message_type()->map_value();
      std::set<std::string> seen;
      for (int k = 0; k < r->FieldSize(m, f); ++k) {
        auto& entry = r->GetRepeatedMessage(m, f, k);
        std::string key;
        pb::TextFormat::PrintFieldValueToString(entry, key_field, -1, &key);
        if (!seen.insert(key).second) {
          std::string at;
          if (tree) {
            auto loc = tree->GetLocation(f, k);
            if (loc.line >= 0)
              at = "line " + std::to_string(loc.line + 1) + " column "
                   + std::to_string(loc.column + 1) + ": ";
          }
          return at + "\"" + f->name() + "\": key " + key + " given more than once";
        }
        if (value_field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
          auto* entry_tree = nested(k);
          auto err = duplicate_map_key(
            entry.GetReflection()->GetMessage(entry, value_field),
            entry_tree ? entry_tree->GetTreeForNested(value_field, -1) : nullptr);
          if (!err.empty())
            return err;
        }
      }
    } else if (f->is_repeated()) {
      for (int k = 0; k < r->FieldSize(m, f); ++k) {
        auto err = duplicate_map_key(r->GetRepeatedMessage(m, f, k), nested(k));
        if (!err.empty())
          return err;
      }
    } else if (r->HasField(m, f)) {
      auto err = duplicate_map_key(r->GetMessage(m, f), nested(-1));
      if (!err.empty())
        return err;
    }
  }
  return {};
}

/// Finds the first key given twice in one object of a JSON text, with its path
/// ("items[1].vm"). A field counts as given twice under its two names too ("retry_budget"
/// and "retryBudget"). Malformed JSON is left to the protobuf parser's own error: the scan
/// then finds nothing. The path is kept as short segments, joined only for the answer.
class json_duplicates {
public:
  json_duplicates(std::string_view s, const pb::Descriptor* root) : s_(s), root_(root) {}

  std::string first() {
    value({root_, nullptr}, 0);
    return found_;
  }

private:
  static constexpr int max_depth = 200;

  /// What a JSON value stands for: a message (its fields are the object's keys), a map (the
  /// object's keys are the map's; its values are `map`'s), or neither (`type` null: keys are
  /// compared as written).
  struct shape {
    const pb::Descriptor* type = nullptr;
    const pb::FieldDescriptor* map = nullptr;
  };

  static bool is(const pb::Descriptor* d, const char* name) {
    return d != nullptr && d->full_name() == name;
  }

  /// The shape of a field's value (an element's, for a repeated field).
  static shape of_field(const pb::FieldDescriptor* f) {
    if (f == nullptr || f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE)
      return {};
    if (f->is_map())
      return {nullptr, f};
    return {f->message_type(), nullptr};
  }

  bool at(char c) {
    while (i_ < s_.size()
           && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
    return i_ < s_.size() && s_[i_] == c;
  }

  /// A string's text between its quotes, escapes as written.
  bool string(std::string& out) {
    if (!at('"'))
      return false;
    auto start = ++i_;
    while (i_ < s_.size() && s_[i_] != '"')
      i_ += s_[i_] == '\\' ? 2 : 1;
    if (i_ >= s_.size())
      return false;
    out.assign(s_.substr(start, i_ - start));
    ++i_;
    return true;
  }

  bool value(shape sh, int depth) {
    if (depth > max_depth)
      return false;
    if (at('{'))
      return object(sh, depth);
    if (at('['))
      return array(sh, depth);
    if (at('"')) {
      std::string ignored;
      return string(ignored);
    }
    // A number or a literal: up to the next delimiter.
    while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != '}' && s_[i_] != ']' && s_[i_] != ' '
           && s_[i_] != '\n' && s_[i_] != '\t' && s_[i_] != '\r')
      ++i_;
    return true;
  }

  /// The elements of an object or an array, after its opening character, up to `close`:
  /// `each(n)` reads the n-th and says whether the scan goes on.
  template <class F>
  bool elements(char close, F each) {
    ++i_;
    if (at(close)) {
      ++i_;
      return true;
    }
    for (size_t n = 0;; ++n) {
      if (!each(n))
        return false;
      if (at(',')) {
        ++i_;
        continue;
      }
      if (!at(close))
        return false;
      ++i_;
      return true;
    }
  }

  bool object(shape sh, int depth) {
    // google.protobuf.Value holding an object is a Struct: a map of Values.
    if (is(sh.type, "google.protobuf.Value"))
      sh.type = sh.type->file()->FindMessageTypeByName("Struct");
    std::set<std::string> keys;
    return elements('}', [&](size_t) {
      std::string key;
      if (!string(key))
        return false;
      shape inner;
      std::string name = key;
      if (sh.map != nullptr) {
        inner = of_field(sh.map->message_type()->map_value());
      } else if (is(sh.type, "google.protobuf.Struct")) {
        inner = {sh.type->file()->FindMessageTypeByName("Value"), nullptr};
      } else if (sh.type != nullptr) {
        auto* f = sh.type->FindFieldByName(key);
        if (f == nullptr)
          f = sh.type->FindFieldByCamelcaseName(key);
        if (f != nullptr) {
          name = f->name();
          inner = of_field(f);
        }
      }
      path_.push_back((path_.empty() ? "" : ".") + name);
      if (!keys.insert(name).second) {
        for (auto& p : path_)
          found_ += p;
        found_ += ": given more than once";
        return false;
      }
      if (!at(':'))
        return false;
      ++i_;
      bool ok = value(inner, depth + 1);
      path_.pop_back();
      return ok;
    });
  }

  /// The elements of a repeated field have its shape; a Value's list holds Values.
  bool array(shape sh, int depth) {
    return elements(']', [&](size_t n) {
      path_.push_back("[" + std::to_string(n) + "]");
      bool ok = value(sh, depth + 1);
      path_.pop_back();
      return ok;
    });
  }

  std::string_view s_;
  const pb::Descriptor* root_;
  size_t i_ = 0;
  std::vector<std::string> path_;
  std::string found_;
};

} // namespace

std::string parse_text_or_json(std::string_view source, pb::Message& m, bool json) {
  if (json) {
    auto st = pb::util::JsonStringToMessage(std::string{source}, &m);
    if (!st.ok())
      return std::string{st.message()};
    return json_duplicates{source, m.GetDescriptor()}.first();
  }
  auto parse = [&](pb::Message& into, pb::TextFormat::ParseInfoTree* tree) {
    pb::TextFormat::Parser parser;
    text_errors errors;
    parser.RecordErrorsTo(&errors);
    parser.WriteLocationsTo(tree);
    pb::io::ArrayInputStream input{source.data(), static_cast<int>(source.size())};
    if (parser.Parse(&input, &into))
      return std::string{};
    return errors.first().empty() ? std::string{"unreadable"} : errors.first();
  };
  if (auto err = parse(m, nullptr); !err.empty())
    return err;
  if (duplicate_map_key(m, nullptr).empty())
    return {};
  // Parsed again with the locations (which large files, a fleet's, need not pay for) to say
  // where the duplicate is.
  std::unique_ptr<pb::Message> again{m.New()};
  pb::TextFormat::ParseInfoTree tree;
  (void) parse(*again, &tree);
  return duplicate_map_key(*again, &tree);
}

} // namespace ferry
