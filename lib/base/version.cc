#include "im/version.h"

namespace im {

const char* LinkedVersion() { return IM_VERSION_STRING; }

}  // namespace im
