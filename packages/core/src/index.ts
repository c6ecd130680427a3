export const PACKAGE_NAME = '@codefeedr/core';
