// The one exception type of the core: a backend status with a sentence. The core returns
// statuses where it can; a constructor cannot, so it throws this, and every entry point
// of the binding turns it (and std::bad_alloc, and any other std::exception) into a JS
// error with a code instead of letting it terminate the process.
#pragma once

#include <stdexcept>
#include <string>

namespace eb {

struct Failure : std::runtime_error {
    int status;
    Failure(int st, const std::string &message) : std::runtime_error(message), status(st) {}
};

}  // namespace eb
