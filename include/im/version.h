// The libim version. CMakeLists.txt reads the three numbers below for project(VERSION), so this
// file is the one place a release changes them.
#ifndef IM_VERSION_H_
#define IM_VERSION_H_

#define IM_VERSION_MAJOR 0
#define IM_VERSION_MINOR 2
#define IM_VERSION_PATCH 0
#define IM_VERSION_STRING "0.2.0"

namespace im {

// The version of the libim a program was linked with (IM_VERSION_STRING is the one of the headers
// it was compiled against; a shared libim of another version makes them differ).
const char* LinkedVersion();

}  // namespace im

#endif  // IM_VERSION_H_
