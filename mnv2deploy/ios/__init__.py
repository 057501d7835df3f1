"""iOS: the Core ML benchmark harness driver (xcodebuild, devicectl, xcresulttool). macOS only at run time."""
