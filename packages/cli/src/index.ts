export const PACKAGE_NAME = '@codefeedr/cli';
