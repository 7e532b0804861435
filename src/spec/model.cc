#include "spec/model.h"

#include <algorithm>

namespace slate::spec {
namespace {

template <typename T>
const T* FindByName(const std::vector<T>& items, std::string_view name) {
  auto it = std::find_if(items.begin(), items.end(), [&](const T& t) { return t.name == name; });
  return it == items.end() ? nullptr : &*it;
}

}  // namespace

const Supervisor* System::FindSupervisor(std::string_view n) const {
  return FindByName(supervisors, n);
}
const Component* System::FindComponent(std::string_view n) const {
  return FindByName(components, n);
}
const Channel* System::FindChannel(std::string_view n) const {
  return FindByName(channels, n);
}
const Device* System::FindDevice(std::string_view n) const {
  return FindByName(devices, n);
}

}  // namespace slate::spec
