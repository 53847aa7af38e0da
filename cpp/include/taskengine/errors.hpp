#pragma once

#include <stdexcept>
#include <string>

namespace taskengine {

// Base of every error the engine raises on purpose. The Python bindings map
// each subclass to a Python exception class of the same name.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The caller passed something invalid (bad option, empty command, ...).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// An artifact bigger than the store accepts (kMaxArtifactBytes).
class ArtifactTooLarge : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

// A store URL that names no supported backend or is malformed.
class InvalidUrl : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

// A job definition (or job set) that is invalid; the message names the job
// and the field.
class JobConfigError : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

// A task, task group or worker id that does not exist.
class NotFound : public Error {
 public:
  using Error::Error;
};

// The store could not be reached or refused the connection.
class ConnectionError : public Error {
 public:
  using Error::Error;
};

// The store answered with an error (constraint, I/O, SQL).
class StoreError : public Error {
 public:
  using Error::Error;
};

// The schema is missing, or newer than this build understands.
class SchemaError : public StoreError {
 public:
  using StoreError::StoreError;
};

// A write carried an attempt's fencing token that is no longer current.
class StaleAttempt : public Error {
 public:
  using Error::Error;
};

}  // namespace taskengine
