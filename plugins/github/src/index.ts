export const PACKAGE_NAME = '@codefeedr/plugin-github';
